//! Where the engine keeps its files: the [`Disk`] trait.
//!
//! Everything the engine does to the data directory goes through a `Disk`: the write-ahead
//! log's [`eddy_wal::Storage`], the metadata store's redb database, every index's Tantivy
//! [`Directory`], and the few things the engine does itself (the `LOCK` and `VERSION` files,
//! creating and removing directories, fsyncing them). [`FsDisk`], the default, is the real
//! file system. Crash tests plug in a simulated disk that keeps written and durable state apart,
//! so that they can cut power at any sync point of the whole engine and reopen on the image
//! (`tests/power_cut.rs`).
//!
//! The durability contract of each method is the one the engine relies on; a simulation must
//! not be kinder than it says.

use std::any::Any;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;
use std::sync::Arc;

use tantivy::Directory;
use tantivy::directory::MmapDirectory;

/// The file system under a data directory.
pub trait Disk: Send + Sync + fmt::Debug + 'static {
    /// Creates `path` and its missing parents, and makes every created entry durable (fsyncs
    /// the parent of each directory it created).
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The whole content of a file (`NotFound` if absent).
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Creates (or replaces) a small file and makes its content durable (fsync of the file).
    /// Its directory entry is durable only after [`Disk::sync_dir`] of its parent.
    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Names of the entries of a directory, in any order.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Removes a directory and everything in it. Durable only after [`Disk::sync_dir`] of its
    /// parent.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes every earlier creation, removal and rename in the directory durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Takes an exclusive lock named by `path` (creating the file if needed), held until the
    /// returned guard is dropped; `Ok(None)` when someone else holds it.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>>;
    /// The log's storage for directory `dir` (created durably if missing).
    fn wal_storage(&self, dir: &Path) -> Result<Arc<dyn eddy_wal::Storage>, eddy_wal::Error>;
    /// Opens (or creates) the redb database in file `path`.
    fn open_redb(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError>;
    /// The Tantivy directory `dir`, which must exist.
    fn tantivy_directory(&self, dir: &Path) -> io::Result<Box<dyn Directory>>;
}

/// The real file system (`std::fs`, Tantivy's `MmapDirectory`, redb's file backend).
#[derive(Debug, Default, Clone, Copy)]
pub struct FsDisk;

/// The default disk: [`FsDisk`].
pub fn fs_disk() -> Arc<dyn Disk> {
    Arc::new(FsDisk)
}

fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Disk for FsDisk {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut missing = Vec::new();
        let mut at = Some(path);
        while let Some(p) = at {
            if p.as_os_str().is_empty() || p.exists() {
                break;
            }
            missing.push(p.to_path_buf());
            at = p.parent();
        }
        fs::create_dir_all(path)?;
        for created in missing.iter().rev() {
            if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
                // IMPORTANT: a new directory's entry is durable only once its parent is
                // fsynced; without it a power cut can lose the directory and all it holds.
                sync_directory(parent)?;
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn write_synced(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        fs::write(path, data)?;
        File::open(path)?.sync_all()
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        sync_directory(path)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn wal_storage(&self, dir: &Path) -> Result<Arc<dyn eddy_wal::Storage>, eddy_wal::Error> {
        Ok(Arc::new(eddy_wal::FsStorage::open(dir)?))
    }

    fn open_redb(&self, path: &Path) -> Result<redb::Database, redb::DatabaseError> {
        redb::Database::create(path)
    }

    fn tantivy_directory(&self, dir: &Path) -> io::Result<Box<dyn Directory>> {
        MmapDirectory::open(dir)
            .map(|d| Box::new(d) as Box<dyn Directory>)
            .map_err(io::Error::other)
    }
}
