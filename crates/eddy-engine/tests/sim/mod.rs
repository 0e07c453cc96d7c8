//! `SimDisk`: one simulated disk under the whole engine — the log, the redb metadata file and
//! every Tantivy directory — that models what survives a power cut.
//!
//! Files keep *written* bytes (what reads see, like the page cache) apart from *durable* bytes
//! (what the last fsync of that file made stable). Directories keep their *live* listing apart
//! from the *durable* one (as of their last fsync), so a file or directory created but not
//! dir-synced vanishes at a crash, a removed one comes back, and a rename (Tantivy's
//! `atomic_write` of `meta.json`) is undone. A crash image keeps exactly what is reachable
//! from the root through durable listings, with durable bytes — optionally "torn": a file
//! that was only appended to since its last sync keeps a random prefix of the unsynced bytes,
//! sometimes followed by zeros, a file overwritten in place (redb) keeps a random subset of
//! its unsynced writes, and a directory keeps a random prefix of the changes to its listing
//! since its last fsync (file systems journal metadata in order; across directories the
//! prefixes are independent, which is harsher than one journal).
//!
//! Every fsync — a file's `sync_data` (log segments, redb, Tantivy's file `terminate` and the
//! temporary file of `atomic_write`) and a directory's fsync (the log's, Tantivy's
//! `sync_directory`, the engine's, and each parent when a directory is created) — is a
//! *sync point*, numbered globally from 1. [`SimDisk::crash_at_sync`] cuts power when sync
//! point `n` is reached, before it takes effect: the image is kept for
//! [`SimDisk::take_crash_image`] and every later mutation fails, so the engine can acknowledge
//! nothing after the cut.
//!
//! The flat `eddy_wal::SimStorage` cannot serve here: it is one directory with its own sync
//! counter, while a power cut must freeze the log, redb and every index at one instant.

#![allow(dead_code, clippy::unwrap_used)]

use std::any::Any;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use eddy_engine::Disk;
use parking_lot::{Condvar, Mutex};
use tantivy::Directory;
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite, WatchCallback,
    WatchCallbackList, WatchHandle, WritePtr,
};

type Inode = u64;
type FileRef = Arc<Mutex<SimFile>>;

const ROOT: Inode = 0;

#[derive(Default)]
struct SimFile {
    written: Vec<u8>,
    durable: Vec<u8>,
    /// `durable` is a prefix of `written` (only appends since the last sync).
    appended_only: bool,
    /// Writes in place since the last sync, in order (for torn images of redb's file).
    unsynced: Vec<(u64, Vec<u8>)>,
    /// Size set in place since the last sync (last one wins).
    unsynced_len: Option<u64>,
}

#[derive(Default, Clone)]
struct SimDir {
    live: BTreeMap<String, Inode>,
    durable: BTreeMap<String, Inode>,
    /// Changes to the listing since the last fsync, in order (`None` = removed).
    unsynced: Vec<(String, Option<Inode>)>,
}

impl SimDir {
    fn link(&mut self, name: String, inode: Inode) {
        self.unsynced.push((name.clone(), Some(inode)));
        self.live.insert(name, inode);
    }

    fn unlink(&mut self, name: &str) -> Option<Inode> {
        let inode = self.live.remove(name)?;
        self.unsynced.push((name.to_string(), None));
        Some(inode)
    }
}

enum Node {
    File(FileRef),
    Dir(SimDir),
}

struct State {
    nodes: HashMap<Inode, Node>,
    next: Inode,
    sync_points: u64,
    /// What each sync point was, for failure messages.
    labels: Vec<String>,
    crash_at: Option<(u64, Option<u64>)>,
    crash_image: Option<SimDisk>,
    dead: bool,
    locks: HashSet<PathBuf>,
}

impl Default for State {
    fn default() -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(SimDir::default()));
        State {
            nodes,
            next: ROOT + 1,
            sync_points: 0,
            labels: Vec::new(),
            crash_at: None,
            crash_image: None,
            dead: false,
            locks: HashSet::new(),
        }
    }
}

/// The simulated disk. Clones share the same state.
#[derive(Clone, Default)]
pub struct SimDisk {
    state: Arc<Mutex<State>>,
    lock_released: Arc<Condvar>,
}

impl fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.lock();
        f.debug_struct("SimDisk")
            .field("sync_points", &state.sync_points)
            .field("dead", &state.dead)
            .finish()
    }
}

fn power_lost() -> io::Error {
    io::Error::other("simulated power loss: the disk is dead")
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

fn names(path: &Path) -> Vec<String> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// A tiny deterministic generator for torn images.
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

impl State {
    fn alloc(&mut self, node: Node) -> Inode {
        let inode = self.next;
        self.next += 1;
        self.nodes.insert(inode, node);
        inode
    }

    fn dir(&self, inode: Inode) -> io::Result<&SimDir> {
        match self.nodes.get(&inode) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::Error::other("not a directory")),
        }
    }

    fn dir_mut(&mut self, inode: Inode) -> io::Result<&mut SimDir> {
        match self.nodes.get_mut(&inode) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(io::Error::other("not a directory")),
        }
    }

    fn lookup(&self, path: &Path) -> io::Result<Inode> {
        let mut at = ROOT;
        for name in names(path) {
            at = *self
                .dir(at)?
                .live
                .get(&name)
                .ok_or_else(|| not_found(path))?;
        }
        Ok(at)
    }

    /// The parent directory's inode and the last name of `path`.
    fn parent(&self, path: &Path) -> io::Result<(Inode, String)> {
        let mut parts = names(path);
        let name = parts
            .pop()
            .ok_or_else(|| io::Error::other("the root has no parent"))?;
        let parent: PathBuf = parts.iter().collect();
        Ok((self.lookup(&parent)?, name))
    }

    fn file(&self, path: &Path) -> io::Result<FileRef> {
        match self.nodes.get(&self.lookup(path)?) {
            Some(Node::File(f)) => Ok(f.clone()),
            _ => Err(io::Error::other(format!(
                "{} is a directory",
                path.display()
            ))),
        }
    }

    fn alive(&self) -> io::Result<()> {
        if self.dead { Err(power_lost()) } else { Ok(()) }
    }

    /// Counts a sync point and cuts power if it is the armed one; `Ok` means the sync takes
    /// effect.
    fn sync_point(&mut self, label: impl FnOnce() -> String) -> io::Result<()> {
        self.alive()?;
        self.sync_points += 1;
        self.labels.push(label());
        if let Some((at, seed)) = self.crash_at
            && at == self.sync_points
        {
            self.crash_image = Some(self.image(seed));
            self.dead = true;
            return Err(power_lost());
        }
        Ok(())
    }

    fn sync_dir(&mut self, inode: Inode, path: &Path) -> io::Result<()> {
        self.sync_point(|| format!("fsync dir {}", path.display()))?;
        let dir = self.dir_mut(inode)?;
        dir.durable = dir.live.clone();
        dir.unsynced.clear();
        Ok(())
    }

    fn new_file(&mut self, path: &Path) -> io::Result<FileRef> {
        self.alive()?;
        let (parent, name) = self.parent(path)?;
        if self.dir(parent)?.live.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                path.display().to_string(),
            ));
        }
        let file: FileRef = Arc::new(Mutex::new(SimFile {
            appended_only: true,
            ..SimFile::default()
        }));
        let inode = self.alloc(Node::File(file.clone()));
        self.dir_mut(parent)?.link(name, inode);
        Ok(file)
    }

    fn image(&self, seed: Option<u64>) -> SimDisk {
        let mut rng = SplitMix(seed.unwrap_or(0));
        let mut image = State::default();
        self.copy_dir(ROOT, ROOT, &mut image, seed.is_some(), &mut rng);
        SimDisk {
            state: Arc::new(Mutex::new(image)),
            lock_released: Arc::default(),
        }
    }

    fn copy_dir(&self, from: Inode, to: Inode, image: &mut State, torn: bool, rng: &mut SplitMix) {
        let Ok(dir) = self.dir(from) else { return };
        let mut durable = dir.durable.clone();
        if torn {
            // Directory changes reach the disk in order (a journal), so a torn image keeps
            // a prefix of those made since the last fsync.
            let kept = rng.below(dir.unsynced.len() as u64 + 1) as usize;
            for (name, change) in &dir.unsynced[..kept] {
                match change {
                    Some(inode) => durable.insert(name.clone(), *inode),
                    None => durable.remove(name),
                };
            }
        }
        let mut listing = BTreeMap::new();
        for (name, &inode) in &durable {
            let new = match self.nodes.get(&inode) {
                Some(Node::File(f)) => {
                    let bytes = torn_bytes(&f.lock(), torn, rng);
                    image.alloc(Node::File(Arc::new(Mutex::new(SimFile {
                        written: bytes.clone(),
                        durable: bytes,
                        appended_only: true,
                        ..SimFile::default()
                    }))))
                }
                Some(Node::Dir(_)) => {
                    let new = image.alloc(Node::Dir(SimDir::default()));
                    self.copy_dir(inode, new, image, torn, rng);
                    new
                }
                None => continue,
            };
            listing.insert(name.clone(), new);
        }
        if let Ok(d) = image.dir_mut(to) {
            d.live = listing.clone();
            d.durable = listing;
        }
    }
}

/// What a power cut leaves of one file.
fn torn_bytes(file: &SimFile, torn: bool, rng: &mut SplitMix) -> Vec<u8> {
    let mut bytes = file.durable.clone();
    if !torn {
        return bytes;
    }
    if file.appended_only {
        if file.written.len() > bytes.len() {
            let unsynced = &file.written[bytes.len()..];
            let kept = rng.below(unsynced.len() as u64 + 1) as usize;
            bytes.extend_from_slice(&unsynced[..kept]);
            if rng.below(4) == 0 {
                let zeros = rng.below((unsynced.len() - kept) as u64 + 1) as usize;
                bytes.resize(bytes.len() + zeros, 0);
            }
        }
    } else {
        // Any subset of the writes in place since the last sync may have reached the disk.
        if let Some(len) = file.unsynced_len
            && rng.below(2) == 0
        {
            bytes.resize(len as usize, 0);
        }
        for (offset, data) in &file.unsynced {
            if rng.below(2) == 0 {
                let end = *offset as usize + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*offset as usize..end].copy_from_slice(data);
            }
        }
    }
    bytes
}

fn sync_file(file: &mut SimFile) {
    if file.appended_only {
        let from = file.durable.len();
        let SimFile {
            written, durable, ..
        } = file;
        durable.extend_from_slice(&written[from..]);
    } else {
        file.durable = file.written.clone();
        file.appended_only = true;
    }
    file.unsynced.clear();
    file.unsynced_len = None;
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Sync points so far.
    pub fn sync_points(&self) -> u64 {
        self.state.lock().sync_points
    }

    /// What sync point `n` (1-based) was.
    pub fn label(&self, n: u64) -> Option<String> {
        let state = self.state.lock();
        state.labels.get(n.checked_sub(1)? as usize).cloned()
    }

    /// Cuts power when sync point `n` is reached (torn with `torn_seed` if given).
    pub fn crash_at_sync(&self, n: u64, torn_seed: Option<u64>) {
        self.state.lock().crash_at = Some((n, torn_seed));
    }

    /// The image left by the armed power cut, once it happened.
    pub fn take_crash_image(&self) -> Option<SimDisk> {
        self.state.lock().crash_image.take()
    }

    /// Whether the power was cut.
    pub fn is_dead(&self) -> bool {
        self.state.lock().dead
    }

    /// What a power cut now would leave.
    pub fn crash(&self, torn_seed: Option<u64>) -> SimDisk {
        self.state.lock().image(torn_seed)
    }

    /// Every file path with its written size, sorted (for failure messages).
    pub fn tree(&self) -> Vec<(String, usize)> {
        let state = self.state.lock();
        let mut out = Vec::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((inode, prefix)) = stack.pop() {
            let Ok(dir) = state.dir(inode) else { continue };
            for (name, &child) in &dir.live {
                let path = format!("{prefix}/{name}");
                match state.nodes.get(&child) {
                    Some(Node::File(f)) => out.push((path, f.lock().written.len())),
                    Some(Node::Dir(_)) => stack.push((child, path)),
                    None => {}
                }
            }
        }
        out.sort();
        out
    }
}

impl Disk for SimDisk {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let mut at = ROOT;
        let mut so_far = PathBuf::new();
        for name in names(path) {
            let parent_path = so_far.clone();
            so_far.push(&name);
            at = match state.dir(at)?.live.get(&name) {
                Some(&child) => child,
                None => {
                    state.alive()?;
                    let child = state.alloc(Node::Dir(SimDir::default()));
                    state.dir_mut(at)?.link(name, child);
                    state.sync_dir(at, &parent_path)?;
                    child
                }
            };
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        Ok(self.state.lock().lookup(path).is_ok())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.state.lock().file(path)?;
        Ok(file.lock().written.clone())
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        let file = match state.file(path) {
            Ok(f) => {
                state.alive()?;
                let mut f2 = f.lock();
                f2.written = Vec::new();
                f2.appended_only = false;
                drop(f2);
                f
            }
            Err(_) => state.new_file(path)?,
        };
        file.lock().written = data.to_vec();
        state.sync_point(|| format!("fsync {}", path.display()))?;
        sync_file(&mut file.lock());
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.state.lock();
        let inode = state.lookup(path)?;
        Ok(state.dir(inode)?.live.keys().cloned().collect())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        state.alive()?;
        let (parent, name) = state.parent(path)?;
        let inode = state
            .dir_mut(parent)?
            .unlink(&name)
            .ok_or_else(|| not_found(path))?;
        // Unlink everything below, as `remove_dir_all` does before the `rmdir` (nobody
        // fsyncs a directory being removed).
        let mut stack = vec![inode];
        while let Some(d) = stack.pop() {
            if let Ok(dir) = state.dir_mut(d) {
                let names: Vec<String> = dir.live.keys().cloned().collect();
                for name in names {
                    stack.extend(dir.unlink(&name));
                }
            }
        }
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state.lock();
        let inode = state.lookup(path)?;
        state.sync_dir(inode, path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        let mut state = self.state.lock();
        if !state.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(SimLock {
            disk: self.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn wal_storage(&self, dir: &Path) -> Result<Arc<dyn eddy_wal::Storage>, eddy_wal::Error> {
        self.create_dir_all(dir).map_err(|e| eddy_wal::Error::Io {
            op: "create directory",
            path: dir.to_path_buf(),
            source: e,
        })?;
        Ok(Arc::new(SimFolder {
            disk: self.clone(),
            dir: dir.to_path_buf(),
            watchers: Arc::default(),
        }))
    }

    fn open_redb(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
        let file = {
            let mut state = self.state.lock();
            match state.file(path) {
                Ok(f) => f,
                Err(_) => state.new_file(path)?,
            }
        };
        redb::Database::builder().create_with_backend(SimBackend {
            disk: self.clone(),
            file,
            path: path.to_path_buf(),
        })
    }

    fn tantivy_directory(&self, dir: &Path) -> io::Result<Box<dyn Directory>> {
        self.state.lock().lookup(dir)?;
        Ok(Box::new(SimFolder {
            disk: self.clone(),
            dir: dir.to_path_buf(),
            watchers: Arc::default(),
        }))
    }
}

struct SimLock {
    disk: SimDisk,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.disk.state.lock().locks.remove(&self.path);
        self.disk.lock_released.notify_all();
    }
}

/// One directory of the disk, as the log's `Storage` and as a Tantivy `Directory`.
#[derive(Clone)]
struct SimFolder {
    disk: SimDisk,
    dir: PathBuf,
    watchers: Arc<WatchCallbackList>,
}

impl fmt::Debug for SimFolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimFolder({})", self.dir.display())
    }
}

impl SimFolder {
    fn full(&self, name: &Path) -> PathBuf {
        self.dir.join(name)
    }
}

struct SimHandle {
    disk: SimDisk,
    file: FileRef,
    path: PathBuf,
}

impl SimHandle {
    fn append(&self, buf: &[u8]) -> io::Result<()> {
        let state = self.disk.state.lock();
        state.alive()?;
        self.file.lock().written.extend_from_slice(buf);
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let mut state = self.disk.state.lock();
        state.sync_point(|| format!("fsync {}", self.path.display()))?;
        sync_file(&mut self.file.lock());
        Ok(())
    }
}

impl eddy_wal::StorageFile for SimHandle {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.lock().written.len() as u64)
    }

    fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        SimHandle::append(self, &bufs.concat())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let state = self.disk.state.lock();
        state.alive()?;
        let mut file = self.file.lock();
        if (len as usize) < file.durable.len() {
            file.appended_only = false;
        }
        file.written.resize(len as usize, 0);
        file.unsynced_len = Some(len);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.sync()
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

impl eddy_wal::Storage for SimFolder {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        self.disk.list_dir(&self.dir)
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn eddy_wal::StorageFile>> {
        let path = self.full(Path::new(name));
        let file = self.disk.state.lock().new_file(&path)?;
        Ok(Box::new(SimHandle {
            disk: self.disk.clone(),
            file,
            path,
        }))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn eddy_wal::StorageFile>> {
        let path = self.full(Path::new(name));
        let file = self.disk.state.lock().file(&path)?;
        Ok(Box::new(SimHandle {
            disk: self.disk.clone(),
            file,
            path,
        }))
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let file = self.disk.state.lock().file(&self.full(Path::new(name)))?;
        Ok(Box::new(SimReader { file, pos: 0 }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut state = self.disk.state.lock();
        state.alive()?;
        let path = self.full(Path::new(name));
        let (parent, name) = state.parent(&path)?;
        state
            .dir_mut(parent)?
            .unlink(&name)
            .map(|_| ())
            .ok_or_else(|| not_found(&path))
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.disk.sync_dir(&self.dir)
    }
}

// ---------------------------------------------------------------------------- Tantivy

struct SimWriter(SimHandle);

impl Write for SimWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SimWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        // As MmapDirectory's SafeFileWriter: flush, then fdatasync.
        self.0.sync()
    }
}

fn read_error(path: &Path, e: io::Error) -> OpenReadError {
    if e.kind() == io::ErrorKind::NotFound {
        OpenReadError::FileDoesNotExist(path.to_path_buf())
    } else {
        OpenReadError::IoError {
            io_error: Arc::new(e),
            filepath: path.to_path_buf(),
        }
    }
}

impl Directory for SimFolder {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        let file = self
            .disk
            .state
            .lock()
            .file(&self.full(path))
            .map_err(|e| read_error(path, e))?;
        let bytes = file.lock().written.clone();
        Ok(Arc::new(OwnedBytes::new(bytes)))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        eddy_wal::Storage::remove(self, &path.to_string_lossy()).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                DeleteError::FileDoesNotExist(path.to_path_buf())
            } else {
                DeleteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_path_buf(),
                }
            }
        })
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        Ok(self.disk.state.lock().lookup(&self.full(path)).is_ok())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let full = self.full(path);
        let file = self.disk.state.lock().new_file(&full).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                OpenWriteError::FileAlreadyExists(path.to_path_buf())
            } else {
                OpenWriteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_path_buf(),
                }
            }
        })?;
        Ok(io::BufWriter::new(Box::new(SimWriter(SimHandle {
            disk: self.disk.clone(),
            file,
            path: full,
        }))))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.disk
            .read(&self.full(path))
            .map_err(|e| read_error(path, e))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // As MmapDirectory: a temporary file is written and fdatasynced, then renamed over
        // `path` (durable only after the directory is fsynced).
        let full = self.full(path);
        {
            let mut state = self.disk.state.lock();
            state.alive()?;
            let (parent, name) = state.parent(&full)?;
            let file: FileRef = Arc::new(Mutex::new(SimFile {
                written: data.to_vec(),
                appended_only: true,
                ..SimFile::default()
            }));
            state.sync_point(|| format!("fsync temporary file for {}", full.display()))?;
            sync_file(&mut file.lock());
            let inode = state.alloc(Node::File(file));
            state.dir_mut(parent)?.link(name, inode);
        }
        if path == Path::new("meta.json") {
            drop(self.watchers.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.disk.sync_dir(&self.dir)
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        let full = self.full(&lock.filepath);
        let mut state = self.disk.state.lock();
        while state.locks.contains(&full) {
            if !lock.is_blocking {
                return Err(LockError::LockBusy);
            }
            self.disk.lock_released.wait(&mut state);
        }
        state.locks.insert(full.clone());
        Ok(DirectoryLock::from(Box::new(SimLock {
            disk: self.disk.clone(),
            path: full,
        })))
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.watchers.subscribe(watch_callback))
    }
}

// ---------------------------------------------------------------------------- redb

struct SimBackend {
    disk: SimDisk,
    file: FileRef,
    path: PathBuf,
}

impl fmt::Debug for SimBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimBackend({})", self.path.display())
    }
}

impl redb::StorageBackend for SimBackend {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.file.lock().written.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let file = self.file.lock();
        let start = offset as usize;
        let end = start + out.len();
        let bytes = file
            .written
            .get(start..end)
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let state = self.disk.state.lock();
        state.alive()?;
        let mut file = self.file.lock();
        file.written.resize(len as usize, 0);
        file.appended_only = false;
        file.unsynced_len = Some(len);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut state = self.disk.state.lock();
        state.sync_point(|| format!("fsync {}", self.path.display()))?;
        sync_file(&mut self.file.lock());
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let state = self.disk.state.lock();
        state.alive()?;
        let mut file = self.file.lock();
        let start = offset as usize;
        let end = start + data.len();
        if file.written.len() < end {
            file.written.resize(end, 0);
        }
        file.written[start..end].copy_from_slice(data);
        file.appended_only = false;
        file.unsynced.push((offset, data.to_vec()));
        Ok(())
    }
}
