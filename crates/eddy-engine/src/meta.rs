//! The metadata store: index registry (uid, primary key, settings, field order), task
//! records and small server-side records (keys, webhooks, features), in redb.
//!
//! Writes are committed with `Durability::None` (no fsync) as operations are applied: the
//! write-ahead log already holds every operation, so a lost commit is redone by replay. The
//! store is made durable (`Durability::Immediate`, one fsync) only before the log is
//! truncated or a Tantivy commit relies on it, together with `applied_lsn`: every operation
//! up to that LSN is reflected in the store. Replay skips the metadata effects of operations
//! up to `applied_lsn`, so task timestamps do not change on restart.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::storage::Disk;
use crate::task::{Task, rfc3339_nanos};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const INDEXES: TableDefinition<&str, &[u8]> = TableDefinition::new("indexes");
const TASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("tasks");
const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");

const APPLIED_LSN: &str = "applied_lsn";
/// The LSN below which the log may have been truncated (written before each truncation).
const LOG_START: &str = "log_start";

/// What the registry knows of an index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexRecord {
    /// Internal id: the LSN of the operation that created the index.
    pub id: u64,
    /// Public uid.
    pub uid: String,
    /// Primary key, once known.
    pub primary_key: Option<String>,
    /// Creation time.
    #[serde(with = "rfc3339_nanos")]
    pub created_at: OffsetDateTime,
    /// Last update time.
    #[serde(with = "rfc3339_nanos")]
    pub updated_at: OffsetDateTime,
    /// Settings.
    pub settings: Settings,
    /// Flattened attribute paths in order of first appearance (position = field id).
    pub fields: Vec<String>,
    /// A rebuild under way: `settings` is what the index is being rebuilt for, while the
    /// record's own `settings` still describe the index that serves (see [`crate::rebuild`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild: Option<PendingRebuild>,
}

/// A rebuild that a settings change started and that has not yet been swapped in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRebuild {
    /// LSN of the latest settings operation the rebuild is for; it names the directory of the
    /// new index (an LSN no incarnation was created at).
    pub lsn: u64,
    /// The settings the index is rebuilt with (every pending patch applied).
    pub settings: Settings,
    /// Uids of the settings tasks that finish when the rebuilt index is swapped in.
    pub tasks: Vec<u64>,
}

/// Changes to commit together.
#[derive(Debug, Default)]
pub struct MetaBatch {
    /// Task records to insert or replace.
    pub tasks: Vec<Task>,
    /// Task uids to remove.
    pub delete_tasks: Vec<u64>,
    /// Index records to insert or replace.
    pub put_indexes: Vec<IndexRecord>,
    /// Index uids to remove (before `put_indexes` are inserted: a deletion that follows a
    /// put of the same uid in one batch must drop that put).
    pub delete_indexes: Vec<String>,
}

impl MetaBatch {
    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
            && self.delete_tasks.is_empty()
            && self.put_indexes.is_empty()
            && self.delete_indexes.is_empty()
    }
}

/// The metadata store.
pub struct MetaStore {
    db: Database,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore").finish_non_exhaustive()
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(Error::meta)
}

fn from_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::Corrupt(format!("metadata record `{what}` does not decode: {e}")))
}

impl MetaStore {
    /// Opens (or creates) the store in a file of `disk`. The caller makes the file's
    /// directory entry durable.
    pub fn open(disk: &dyn Disk, path: &Path) -> Result<MetaStore> {
        let db = disk.open_redb(path).map_err(Error::meta)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<MetaStore> {
        let mut tx = db.begin_write().map_err(Error::meta)?;
        tx.set_durability(Durability::Immediate)
            .map_err(Error::meta)?;
        {
            tx.open_table(META).map_err(Error::meta)?;
            tx.open_table(INDEXES).map_err(Error::meta)?;
            tx.open_table(TASKS).map_err(Error::meta)?;
            tx.open_table(RECORDS).map_err(Error::meta)?;
        }
        tx.commit().map_err(Error::meta)?;
        Ok(MetaStore { db })
    }

    /// LSN up to which every operation is reflected in the durable store.
    pub fn applied_lsn(&self) -> Result<u64> {
        Ok(self.lsn(APPLIED_LSN)?.unwrap_or(0))
    }

    /// The LSN below which the log may have been truncated; `None` for a store that never
    /// recorded it (created by an eddy that did not).
    pub fn log_start(&self) -> Result<Option<u64>> {
        self.lsn(LOG_START)
    }

    /// Records, durably, that the log may be truncated below `lsn`.
    pub fn set_log_start(&self, lsn: u64) -> Result<()> {
        self.put_lsn(LOG_START, lsn)
    }

    /// Stores an LSN under `key` durably.
    fn put_lsn(&self, key: &str, lsn: u64) -> Result<()> {
        let mut tx = self.db.begin_write().map_err(Error::meta)?;
        tx.set_durability(Durability::Immediate)
            .map_err(Error::meta)?;
        {
            let mut t = tx.open_table(META).map_err(Error::meta)?;
            t.insert(key, lsn.to_le_bytes().as_slice())
                .map_err(Error::meta)?;
        }
        tx.commit().map_err(Error::meta)
    }

    fn lsn(&self, key: &str) -> Result<Option<u64>> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(META).map_err(Error::meta)?;
        match t.get(key).map_err(Error::meta)? {
            Some(v) => {
                let arr: [u8; 8] = v
                    .value()
                    .try_into()
                    .map_err(|_| Error::Corrupt(format!("{key} is not 8 bytes")))?;
                Ok(Some(u64::from_le_bytes(arr)))
            }
            None => Ok(None),
        }
    }

    /// Every registered index.
    pub fn indexes(&self) -> Result<Vec<IndexRecord>> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(INDEXES).map_err(Error::meta)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(Error::meta)? {
            let (k, v) = item.map_err(Error::meta)?;
            out.push(from_json(v.value(), k.value())?);
        }
        Ok(out)
    }

    /// Commits a batch without fsync.
    pub fn commit(&self, batch: &MetaBatch) -> Result<()> {
        self.commit_with(batch, Durability::None)
    }

    /// Commits a batch durably (one fsync), with everything committed before it.
    pub fn commit_durable(&self, batch: &MetaBatch) -> Result<()> {
        self.commit_with(batch, Durability::Immediate)
    }

    fn commit_with(&self, batch: &MetaBatch, durability: Durability) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.db.begin_write().map_err(Error::meta)?;
        tx.set_durability(durability).map_err(Error::meta)?;
        {
            let mut tasks = tx.open_table(TASKS).map_err(Error::meta)?;
            for task in &batch.tasks {
                tasks
                    .insert(task.uid, to_json(task)?.as_slice())
                    .map_err(Error::meta)?;
            }
            for uid in &batch.delete_tasks {
                tasks.remove(*uid).map_err(Error::meta)?;
            }
            // IMPORTANT: removals first. One batch can delete an index and create it again
            // (one drain applies both): the new incarnation's record must survive.
            let mut indexes = tx.open_table(INDEXES).map_err(Error::meta)?;
            for uid in &batch.delete_indexes {
                indexes.remove(uid.as_str()).map_err(Error::meta)?;
            }
            for record in &batch.put_indexes {
                indexes
                    .insert(record.uid.as_str(), to_json(record)?.as_slice())
                    .map_err(Error::meta)?;
            }
        }
        tx.commit().map_err(Error::meta)
    }

    /// Makes everything committed so far durable, recording that every operation up to
    /// `applied_lsn` is reflected.
    pub fn sync(&self, applied_lsn: u64) -> Result<()> {
        self.put_lsn(APPLIED_LSN, applied_lsn)
    }

    /// A task by uid.
    pub fn task(&self, uid: u64) -> Result<Option<Task>> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(TASKS).map_err(Error::meta)?;
        match t.get(uid).map_err(Error::meta)? {
            Some(v) => Ok(Some(from_json(v.value(), "task")?)),
            None => Ok(None),
        }
    }

    /// Visits tasks from the newest (or from `from` downwards; upwards when `reverse`)
    /// until `visit` returns `false`.
    pub fn scan_tasks(
        &self,
        from: Option<u64>,
        reverse: bool,
        mut visit: impl FnMut(Task) -> bool,
    ) -> Result<()> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(TASKS).map_err(Error::meta)?;
        let mut handle = |item: std::result::Result<
            (redb::AccessGuard<'_, u64>, redb::AccessGuard<'_, &[u8]>),
            redb::StorageError,
        >|
         -> Result<bool> {
            let (_, v) = item.map_err(Error::meta)?;
            Ok(visit(from_json(v.value(), "task")?))
        };
        if reverse {
            let range = t.range(from.unwrap_or(0)..).map_err(Error::meta)?;
            for item in range {
                if !handle(item)? {
                    break;
                }
            }
        } else {
            let range = t.range(..=from.unwrap_or(u64::MAX)).map_err(Error::meta)?;
            for item in range.rev() {
                if !handle(item)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Reads a small JSON record (API keys, webhooks, features).
    pub fn record<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(RECORDS).map_err(Error::meta)?;
        match t.get(key).map_err(Error::meta)? {
            Some(v) => Ok(Some(from_json(v.value(), key)?)),
            None => Ok(None),
        }
    }

    /// Lists records whose key starts with `prefix`.
    pub fn records<T: for<'de> Deserialize<'de>>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let tx = self.db.begin_read().map_err(Error::meta)?;
        let t = tx.open_table(RECORDS).map_err(Error::meta)?;
        let mut out = Vec::new();
        for item in t.range(prefix..).map_err(Error::meta)? {
            let (k, v) = item.map_err(Error::meta)?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_string(), from_json(v.value(), key)?));
        }
        Ok(out)
    }

    /// Writes (or removes, with `None`) a small record durably. These are rare
    /// administrative writes that do not go through the log.
    pub fn put_record<T: Serialize>(&self, key: &str, value: Option<&T>) -> Result<()> {
        let mut tx = self.db.begin_write().map_err(Error::meta)?;
        tx.set_durability(Durability::Immediate)
            .map_err(Error::meta)?;
        {
            let mut t = tx.open_table(RECORDS).map_err(Error::meta)?;
            match value {
                Some(v) => {
                    t.insert(key, to_json(v)?.as_slice()).map_err(Error::meta)?;
                }
                None => {
                    t.remove(key).map_err(Error::meta)?;
                }
            }
        }
        tx.commit().map_err(Error::meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{TaskKind, TaskStatus};

    fn task(uid: u64) -> Task {
        Task {
            uid,
            batch_uid: Some(uid),
            index_uid: Some("i".into()),
            status: TaskStatus::Succeeded,
            kind: TaskKind::DocumentAdditionOrUpdate,
            canceled_by: None,
            details: None,
            error: None,
            duration: None,
            enqueued_at: OffsetDateTime::UNIX_EPOCH,
            started_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn durable_sync_survives_reopen_and_scans_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let store = MetaStore::open(&crate::storage::FsDisk, &path).unwrap();
            let batch = MetaBatch {
                tasks: (0..5).map(task).collect(),
                ..MetaBatch::default()
            };
            store.commit(&batch).unwrap();
            store.sync(5).unwrap();
        }
        let store = MetaStore::open(&crate::storage::FsDisk, &path).unwrap();
        assert_eq!(store.applied_lsn().unwrap(), 5);
        let mut newest_first = Vec::new();
        store
            .scan_tasks(Some(3), false, |t| {
                newest_first.push(t.uid);
                true
            })
            .unwrap();
        assert_eq!(newest_first, vec![3, 2, 1, 0]);
        let mut oldest_first = Vec::new();
        store
            .scan_tasks(Some(2), true, |t| {
                oldest_first.push(t.uid);
                oldest_first.len() < 2
            })
            .unwrap();
        assert_eq!(oldest_first, vec![2, 3]);
        assert_eq!(store.task(4).unwrap().unwrap().uid, 4);
        assert!(store.task(9).unwrap().is_none());
    }

    #[test]
    fn records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetaStore::open(&crate::storage::FsDisk, &dir.path().join("m")).unwrap();
        store.put_record("key/a", Some(&1u32)).unwrap();
        store.put_record("key/b", Some(&2u32)).unwrap();
        store.put_record("other", Some(&3u32)).unwrap();
        let all: Vec<(String, u32)> = store.records("key/").unwrap();
        assert_eq!(all, vec![("key/a".into(), 1), ("key/b".into(), 2)]);
        store.put_record::<u32>("key/a", None).unwrap();
        assert_eq!(store.record::<u32>("key/a").unwrap(), None);
    }
}
