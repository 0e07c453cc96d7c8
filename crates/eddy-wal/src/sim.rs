//! `SimStorage`: an in-memory [`Storage`] that models what survives a power cut.
//!
//! Every file keeps two byte strings apart: what was *written* (what reads see, like the page
//! cache) and what is *durable* (what the last `sync_data` made stable). The directory keeps two
//! listings apart too: the live one and the one as of the last `sync_dir`, so a file created but
//! not dir-synced vanishes on a crash and a file removed but not dir-synced comes back.
//!
//! What tests can do with it:
//! - [`SimStorage::crash`] / [`SimStorage::crash_torn`]: the image a power cut *now* would leave,
//!   as a new independent `SimStorage` (durable bytes only, or durable bytes plus a random prefix
//!   of each file's un-synced appended bytes, sometimes followed by zeros, to model torn writes).
//! - [`SimStorage::crash_at_sync`]: cut power when sync point number `n` is reached (every
//!   `sync_data` and `sync_dir` is a sync point, numbered from 1 in call order). The image is
//!   kept for [`SimStorage::take_crash_image`] and every later mutation fails, so the code under
//!   test acknowledges nothing after the cut.
//! - [`SimStorage::fail_sync_at`] / [`SimStorage::fail_write_at`]: make one sync point or one
//!   append fail with an I/O error (the failed append writes the first half of its bytes), to
//!   test fail-stop behaviour.
//! - [`SimStorage::read`], [`SimStorage::replace`]: inspect and damage files.
//!
//! Clones share the same state. A crash image starts with fresh counters and no faults armed.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::storage::{Storage, StorageFile};

/// An in-memory storage with separate written and durable state; see the module docs.
#[derive(Clone, Default)]
pub struct SimStorage {
    state: Arc<Mutex<SimState>>,
}

type FileRef = Arc<Mutex<SimFile>>;

#[derive(Default)]
struct SimState {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    inodes: HashMap<u64, FileRef>,
    next_inode: u64,
    sync_points: u64,
    writes: u64,
    fail_sync_at: Option<u64>,
    fail_write_at: Option<u64>,
    crash_at_sync: Option<(u64, Option<u64>)>,
    crash_image: Option<SimStorage>,
    dead: bool,
}

#[derive(Default, Clone)]
struct SimFile {
    written: Vec<u8>,
    durable: Vec<u8>,
    /// `durable` is a prefix of `written` (only appends since the last sync), so a crash may
    /// keep any prefix of the difference.
    appended_only: bool,
}

impl fmt::Debug for SimStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("SimStorage")
            .field("files", &state.live.keys().collect::<Vec<_>>())
            .field("sync_points", &state.sync_points)
            .field("dead", &state.dead)
            .finish()
    }
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss: storage is dead")
}

impl SimStorage {
    /// An empty directory.
    pub fn new() -> SimStorage {
        SimStorage::default()
    }

    /// Sync points (`sync_data` and `sync_dir` calls) so far, including failed ones.
    pub fn sync_points(&self) -> u64 {
        self.state.lock().sync_points
    }

    /// Append calls so far, including failed ones.
    pub fn writes(&self) -> u64 {
        self.state.lock().writes
    }

    /// Makes sync point number `n` (1-based, as counted by [`SimStorage::sync_points`]) fail
    /// with an I/O error without making anything durable. Later sync points succeed again.
    pub fn fail_sync_at(&self, n: u64) {
        self.state.lock().fail_sync_at = Some(n);
    }

    /// Makes append number `n` (1-based, as counted by [`SimStorage::writes`]) fail after
    /// writing the first half of its bytes.
    pub fn fail_write_at(&self, n: u64) {
        self.state.lock().fail_write_at = Some(n);
    }

    /// Cuts power when sync point number `n` is reached, before it takes effect: the crash
    /// image (torn with `torn_seed` if given, see [`SimStorage::crash_torn`]) is kept for
    /// [`SimStorage::take_crash_image`], that sync and every later mutation fail.
    pub fn crash_at_sync(&self, n: u64, torn_seed: Option<u64>) {
        self.state.lock().crash_at_sync = Some((n, torn_seed));
    }

    /// The image left by the power cut armed with [`SimStorage::crash_at_sync`], once it
    /// happened.
    pub fn take_crash_image(&self) -> Option<SimStorage> {
        self.state.lock().crash_image.take()
    }

    /// Whether the armed power cut has happened.
    pub fn is_dead(&self) -> bool {
        self.state.lock().dead
    }

    /// What a power cut now would leave: the durable directory listing with each file's
    /// durable bytes.
    pub fn crash(&self) -> SimStorage {
        self.state.lock().image(None)
    }

    /// Like [`SimStorage::crash`], but each file that was only appended to since its last sync
    /// also keeps a random prefix (chosen from `seed`) of its un-synced bytes, sometimes
    /// followed by zeros up to the written length, as a torn write can leave on a real disk.
    pub fn crash_torn(&self, seed: u64) -> SimStorage {
        self.state.lock().image(Some(seed))
    }

    /// Names in the live directory listing, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.state.lock().live.keys().cloned().collect()
    }

    /// The written (not necessarily durable) bytes of `name`.
    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let inode = state.live.get(name)?;
        Some(state.inodes[inode].lock().written.clone())
    }

    /// The durable bytes of `name` (as a crash now would leave them, if its entry is durable).
    pub fn read_durable(&self, name: &str) -> Option<Vec<u8>> {
        let state = self.state.lock();
        let inode = state.live.get(name).or_else(|| state.durable.get(name))?;
        Some(state.inodes[inode].lock().durable.clone())
    }

    /// Replaces the content of `name` (creating it), written and durable alike, with a durable
    /// directory entry: for tests that damage files on purpose.
    pub fn replace(&self, name: &str, bytes: Vec<u8>) {
        let mut state = self.state.lock();
        let inode = match state.live.get(name) {
            Some(&inode) => inode,
            None => state.new_inode(name),
        };
        state.durable.insert(name.to_string(), inode);
        *state.inodes[&inode].lock() = SimFile {
            written: bytes.clone(),
            durable: bytes,
            appended_only: true,
        };
    }

    fn file(&self, name: &str) -> io::Result<FileRef> {
        let state = self.state.lock();
        let inode = state
            .live
            .get(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        Ok(state.inodes[inode].clone())
    }
}

impl SimState {
    fn new_inode(&mut self, name: &str) -> u64 {
        let inode = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(inode, Arc::default());
        self.live.insert(name.to_string(), inode);
        inode
    }

    /// Counts a sync point and applies the armed faults; `Ok` means the sync takes effect.
    fn sync_point(&mut self) -> io::Result<()> {
        if self.dead {
            return Err(power_lost());
        }
        self.sync_points += 1;
        if let Some((at, seed)) = self.crash_at_sync
            && at == self.sync_points
        {
            self.crash_image = Some(self.image(seed));
            self.dead = true;
            return Err(power_lost());
        }
        if self.fail_sync_at == Some(self.sync_points) {
            return Err(io::Error::other(format!(
                "injected fdatasync failure at sync point {}",
                self.sync_points
            )));
        }
        Ok(())
    }

    fn image(&self, torn_seed: Option<u64>) -> SimStorage {
        let mut rng = SplitMix(torn_seed.unwrap_or(0));
        let mut image = SimState::default();
        for (name, inode) in &self.durable {
            let file = self.inodes[inode].lock();
            let mut bytes = file.durable.clone();
            if torn_seed.is_some() && file.appended_only && file.written.len() > bytes.len() {
                let unsynced = &file.written[bytes.len()..];
                let kept = rng.below(unsynced.len() as u64 + 1) as usize;
                bytes.extend_from_slice(&unsynced[..kept]);
                if rng.below(4) == 0 {
                    let zeros = rng.below((unsynced.len() - kept) as u64 + 1) as usize;
                    bytes.resize(bytes.len() + zeros, 0);
                }
            }
            let new = image.new_inode(name);
            *image.inodes[&new].lock() = SimFile {
                written: bytes.clone(),
                durable: bytes,
                appended_only: true,
            };
        }
        image.durable = image.live.clone();
        SimStorage {
            state: Arc::new(Mutex::new(image)),
        }
    }
}

/// A tiny deterministic generator, so that crash images are reproducible from a seed without a
/// `rand` dependency in the library.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % bound.max(1)
    }
}

impl Storage for SimStorage {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("sim").join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.state.lock();
        if state.dead {
            return Err(power_lost());
        }
        if state.live.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                name.to_string(),
            ));
        }
        let inode = state.new_inode(name);
        let file = state.inodes[&inode].clone();
        Ok(Box::new(SimHandle {
            state: self.state.clone(),
            file,
        }))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = self.file(name)?;
        Ok(Box::new(SimHandle {
            state: self.state.clone(),
            file,
        }))
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(SimReader {
            file: self.file(name)?,
            pos: 0,
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.state.lock();
        if state.dead {
            return Err(power_lost());
        }
        state
            .live
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }

    fn sync_dir(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        state.sync_point()?;
        state.durable = state.live.clone();
        let SimState {
            live,
            durable,
            inodes,
            ..
        } = &mut *state;
        inodes.retain(|inode, _| {
            live.values().any(|i| i == inode) || durable.values().any(|i| i == inode)
        });
        Ok(())
    }
}

struct SimHandle {
    state: Arc<Mutex<SimState>>,
    file: FileRef,
}

impl StorageFile for SimHandle {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.lock().written.len() as u64)
    }

    fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        let mut state = self.state.lock();
        if state.dead {
            return Err(power_lost());
        }
        state.writes += 1;
        let mut file = self.file.lock();
        if state.fail_write_at == Some(state.writes) {
            let all: Vec<u8> = bufs.concat();
            file.written.extend_from_slice(&all[..all.len() / 2]);
            return Err(io::Error::other(format!(
                "injected write failure at write {}",
                state.writes
            )));
        }
        for buf in bufs {
            file.written.extend_from_slice(buf);
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        if self.state.lock().dead {
            return Err(power_lost());
        }
        let mut file = self.file.lock();
        let len = usize::try_from(len).map_err(io::Error::other)?;
        if len < file.durable.len() {
            file.appended_only = false;
        }
        file.written.resize(len, 0);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.state.lock().sync_point()?;
        let mut file = self.file.lock();
        if file.appended_only {
            let from = file.durable.len();
            let SimFile {
                written, durable, ..
            } = &mut *file;
            durable.extend_from_slice(&written[from..]);
        } else {
            file.durable = file.written.clone();
            file.appended_only = true;
        }
        Ok(())
    }
}

struct SimReader {
    file: FileRef,
    pos: usize,
}

impl Read for SimReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let file = self.file.lock();
        let available = file.written.get(self.pos..).unwrap_or(&[]);
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contents(storage: &SimStorage) -> Vec<(String, Vec<u8>)> {
        storage
            .file_names()
            .into_iter()
            .map(|n| (n.clone(), storage.read(&n).unwrap()))
            .collect()
    }

    #[test]
    fn written_but_unsynced_bytes_and_entries_are_lost() {
        let s = SimStorage::new();
        let mut a = s.create("a").unwrap();
        a.append(&[b"hello"]).unwrap();
        s.sync_dir().unwrap();
        assert_eq!(contents(&s.crash()), vec![("a".to_string(), vec![])]);
        a.sync_data().unwrap();
        a.append(&[b" world"]).unwrap();
        let mut b = s.create("b").unwrap();
        b.append(&[b"x"]).unwrap();
        b.sync_data().unwrap();
        assert_eq!(
            contents(&s.crash()),
            vec![("a".to_string(), b"hello".to_vec())]
        );
        assert_eq!(s.sync_points(), 3);
    }

    #[test]
    fn removed_files_come_back_until_dir_sync() {
        let s = SimStorage::new();
        let mut a = s.create("a").unwrap();
        a.append(&[b"data"]).unwrap();
        a.sync_data().unwrap();
        s.sync_dir().unwrap();
        s.remove("a").unwrap();
        assert!(s.file_names().is_empty());
        assert_eq!(
            contents(&s.crash()),
            vec![("a".to_string(), b"data".to_vec())]
        );
        s.sync_dir().unwrap();
        assert!(s.crash().file_names().is_empty());
    }

    #[test]
    fn torn_images_keep_a_prefix_of_unsynced_bytes() {
        let s = SimStorage::new();
        let mut a = s.create("a").unwrap();
        a.append(&[b"durable"]).unwrap();
        a.sync_data().unwrap();
        s.sync_dir().unwrap();
        a.append(&[b"-unsynced-tail"]).unwrap();
        let full = b"durable-unsynced-tail";
        let mut lengths = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let bytes = s.crash_torn(seed).read("a").unwrap();
            let data_len = bytes
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |p| p + 1)
                .max(7);
            assert_eq!(&bytes[..data_len], &full[..data_len], "seed {seed}");
            assert!(bytes[data_len..].iter().all(|&b| b == 0));
            lengths.insert(bytes.len());
        }
        assert!(lengths.len() > 5, "torn images should vary: {lengths:?}");
    }

    #[test]
    fn crash_at_sync_freezes_the_image_and_kills_the_storage() {
        let s = SimStorage::new();
        s.crash_at_sync(2, None);
        let mut a = s.create("a").unwrap();
        a.append(&[b"one"]).unwrap();
        a.sync_data().unwrap();
        a.append(&[b"two"]).unwrap();
        assert!(s.sync_dir().is_err());
        assert!(s.is_dead());
        assert!(a.append(&[b"three"]).is_err());
        // The directory entry was never made durable, so the image has no file at all.
        assert!(s.take_crash_image().unwrap().file_names().is_empty());
    }

    #[test]
    fn injected_faults_fire_once() {
        let s = SimStorage::new();
        let mut a = s.create("a").unwrap();
        s.fail_sync_at(1);
        s.fail_write_at(2);
        a.append(&[b"abcd"]).unwrap();
        assert!(a.sync_data().is_err());
        assert!(s.crash().file_names().is_empty());
        assert!(a.append(&[b"efgh"]).is_err());
        assert_eq!(s.read("a").unwrap(), b"abcdef");
        a.append(&[b"ij"]).unwrap();
        a.sync_data().unwrap();
        assert_eq!(s.read_durable("a").unwrap(), b"abcdefij");
    }
}
