//! Primary keys of segment documents, decoded once per segment when many are asked for.
//!
//! A segment document is hidden by a memtable that holds a newer version of its primary
//! key; when the memtable's hash pre-check matches, the search compares the keys themselves
//! ([`super::layers::Snapshot::visible`]). The segment's `_pk` column is dictionary-encoded in
//! an sstable whose blocks are zstd-compressed: every lookup decompressed a whole block (with
//! a fresh decompression context) and scanned it. While documents that segments already hold
//! are written again (updates, re-imports), nearly every hit of every search takes that path,
//! and searches became ten times more expensive.
//!
//! So after enough lookups in a segment the whole dictionary is decoded once, in one pass,
//! into a table indexed by term ordinal, kept in a process-wide cache keyed by Tantivy's
//! segment id (unique across indexes; a segment's dictionary never changes). A segment that
//! sees only a few lookups (one updated document) never pays for the table. The cache is
//! emptied when it holds more than [`MAX_BYTES`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tantivy::columnar::StrColumn;
use tantivy::index::SegmentId;

/// Bytes of decoded keys kept before the cache is emptied.
pub const MAX_BYTES: usize = 256 << 20;

/// Lookups in a segment before its table is built: a fixed allowance plus a share of its
/// keys, so that building (one pass over every key) costs less than the lookups it saves.
fn build_after(terms: usize) -> u64 {
    256 + (terms / 256) as u64
}

/// Every primary key of a segment, by term ordinal.
pub struct PkTable {
    text: String,
    /// End offset in `text` of each key.
    ends: Vec<u32>,
}

impl PkTable {
    fn build(column: &StrColumn) -> Option<PkTable> {
        let dictionary = column.dictionary();
        let mut table = PkTable {
            text: String::new(),
            ends: Vec::with_capacity(dictionary.num_terms()),
        };
        let mut stream = dictionary.stream().ok()?;
        while stream.advance() {
            if stream.term_ord() != table.ends.len() as u64 {
                return None;
            }
            table.text.push_str(std::str::from_utf8(stream.key()).ok()?);
            table.ends.push(u32::try_from(table.text.len()).ok()?);
        }
        Some(table)
    }

    /// The key of term ordinal `ord`.
    pub fn get(&self, ord: u64) -> Option<&str> {
        let i = usize::try_from(ord).ok()?;
        let end = *self.ends.get(i)? as usize;
        let start = match i {
            0 => 0,
            _ => self.ends[i - 1] as usize,
        };
        self.text.get(start..end)
    }

    fn bytes(&self) -> usize {
        self.text.len() + self.ends.len() * 4
    }
}

enum Entry {
    /// Lookups so far.
    Counting(u64),
    /// The decoded keys (`None`: decoding failed, keep using the column).
    Table(Option<Arc<PkTable>>),
}

#[derive(Default)]
struct Cache {
    entries: HashMap<SegmentId, Entry>,
    bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
}

thread_local! {
    /// The table this thread used last: a search asks for many keys of the same segment in a
    /// row, and this skips the shared lock for them.
    static LAST: RefCell<Option<(SegmentId, Arc<PkTable>)>> = const { RefCell::new(None) };
}

/// Calls `f` with the primary key of the document whose `_pk` term ordinal is `ord` in
/// segment `id` (the empty string if the column does not have it).
pub fn with_key<R>(id: SegmentId, column: &StrColumn, ord: u64, f: impl FnOnce(&str) -> R) -> R {
    // Borrowed in place: cloning the `Arc` would bounce its count between the cores.
    let f = match LAST.with(|l| match &*l.borrow() {
        Some((last, table)) if *last == id => match table.get(ord) {
            Some(key) => Ok(f(key)),
            None => Err(f),
        },
        _ => Err(f),
    }) {
        Ok(r) => return r,
        Err(f) => f,
    };
    let table = shared(id, column);
    if let Some(table) = &table {
        LAST.with(|l| *l.borrow_mut() = Some((id, table.clone())));
    }
    match table.as_ref().and_then(|t| t.get(ord)) {
        Some(key) => f(key),
        None => {
            let mut out = String::new();
            let _ = column.ord_to_str(ord, &mut out);
            f(&out)
        }
    }
}

/// The segment's table from the shared cache, counting the lookup and building the table
/// when it is due.
fn shared(id: SegmentId, column: &StrColumn) -> Option<Arc<PkTable>> {
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let entry = cache.entries.entry(id).or_insert(Entry::Counting(0));
    match entry {
        Entry::Table(table) => table.clone(),
        Entry::Counting(n) => {
            *n += 1;
            if *n == build_after(column.num_terms()) {
                drop(cache);
                build(id, column)
            } else {
                None
            }
        }
    }
}

/// Decodes a segment's keys (outside the lock) and caches them.
fn build(id: SegmentId, column: &StrColumn) -> Option<Arc<PkTable>> {
    let table = PkTable::build(column).map(Arc::new);
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    let bytes = table.as_ref().map_or(0, |t| t.bytes());
    if cache.bytes + bytes > MAX_BYTES {
        cache.entries.clear();
        cache.bytes = 0;
    }
    if bytes > MAX_BYTES {
        // Too large to keep: the segment goes on with the column.
        cache.entries.insert(id, Entry::Table(None));
        return None;
    }
    cache.bytes += bytes;
    cache.entries.insert(id, Entry::Table(table.clone()));
    table
}
