//! The narrow file-system interface the log is written against.
//!
//! Everything the log does to disk goes through [`Storage`] and [`StorageFile`], so that tests
//! can swap in [`SimStorage`](crate::SimStorage) (feature `sim`) to cut power at any sync point or
//! make a write or an fdatasync fail. The operations are exactly those whose durability the
//! design reasons about: append, `set_len`, `sync_data` (fdatasync) on a file, and create /
//! remove / `sync_dir` on the directory.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// A directory of log files. File names are plain names inside it, never paths.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where `name` lives, for error messages (`name == ""` means the directory itself).
    fn path(&self, name: &str) -> PathBuf;
    /// Names of the files in the directory, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates a new, empty file; fails if it exists. The directory entry is durable only
    /// after [`Storage::sync_dir`].
    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for appending (and truncation).
    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for reading from its start. The handle must keep reading the
    /// file's data even if the file is removed meanwhile (as a POSIX file descriptor does).
    fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>>;
    /// Removes a file; durable only after [`Storage::sync_dir`].
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes every earlier create and remove in the directory durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
}

/// An open log file that grows by appends.
pub trait StorageFile: Send {
    /// Current size in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Appends all of `bufs`, in order, at the end of the file (one write(2) when it can).
    fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()>;
    /// Truncates (or extends with zeros) to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's data and size durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The real file system: `std::fs`, where `File::sync_data` is fdatasync.
///
/// Constructing one takes an exclusive lock on `<dir>/LOCK` (`flock` on Unix), held until the
/// `FsStorage` is dropped, so two logs can never write to the same directory, whether they are
/// in one process or two. The kernel releases the lock when a process dies.
#[derive(Debug)]
pub struct FsStorage {
    dir: PathBuf,
    _lock: File,
}

/// Name of the lock file in the log directory.
pub const LOCK_FILE: &str = "LOCK";

impl FsStorage {
    /// Opens (creating it if missing) the log directory `dir` and locks it.
    ///
    /// # Errors
    /// [`Error::Locked`] when another `FsStorage` holds the lock; [`Error::Io`] when the
    /// directory or the lock file cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> Result<FsStorage, Error> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_durably(&dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| Error::io("open", lock_path.clone(), e))?;
        match lock.try_lock() {
            Ok(()) => Ok(FsStorage { dir, _lock: lock }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked { path: lock_path }),
            Err(TryLockError::Error(e)) => Err(Error::io("lock", lock_path, e)),
        }
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `create_dir_all`, then fsync the parent of every directory it created, so that a log whose
/// first records were acknowledged cannot vanish with its directory on a crash.
fn create_dir_durably(dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at {
        if path.as_os_str().is_empty() || path.exists() {
            break;
        }
        missing.push(path.to_path_buf());
        at = path.parent();
    }
    fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir.to_path_buf(), e))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            // IMPORTANT: a new directory's entry in its parent is durable only after the parent is
            // fsynced; without it a crash could lose the whole log directory.
            sync_directory(parent)
                .map_err(|e| Error::io("fsync directory", parent.to_path_buf(), e))?;
        }
    }
    Ok(())
}

fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Storage for FsStorage {
    fn path(&self, name: &str) -> PathBuf {
        if name.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(name)
        }
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(self.dir.join(name))?;
        Ok(Box::new(FsFile { file }))
    }

    fn open(&self, name: &str) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().append(true).open(self.dir.join(name))?;
        Ok(Box::new(FsFile { file }))
    }

    fn open_read(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(self.dir.join(name))?))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.dir.join(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        sync_directory(&self.dir)
    }
}

struct FsFile {
    file: File,
}

impl StorageFile for FsFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn append(&mut self, bufs: &[&[u8]]) -> io::Result<()> {
        if let [only] = bufs {
            return self.file.write_all(only);
        }
        let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
        let mut rest = &mut slices[..];
        IoSlice::advance_slices(&mut rest, 0);
        while !rest.is_empty() {
            match self.file.write_vectored(rest) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
