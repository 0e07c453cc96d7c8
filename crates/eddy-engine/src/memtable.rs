//! Memtables: the in-memory inverted index that makes a write searchable the moment it is
//! acknowledged.
//!
//! A memtable is append-only. Every document version gets a new *slot*; replacing or
//! deleting a document marks the old slot dead *as of an LSN* instead of removing it. A
//! search reads at a snapshot LSN `S`: a slot is visible when `slot.lsn <= S < slot.dead_lsn`.
//! This is what lets the write path apply a large batch in several short critical sections
//! while a concurrent search, which reads at the LSN of the last *completed* operation, never
//! sees half of a batch (R1).
//!
//! Besides its own documents, a memtable remembers which primary keys it *shadows*: keys
//! whose previous version lives in an older layer (an older memtable or the Tantivy
//! segments). Searches skip older versions of those keys, statistics subtract them
//! (`dead_docs`, `dead_tokens`), and the flusher turns them into Tantivy deletes.
//!
//! A memtable never contains a `delete all`: the engine freezes the active memtable and
//! starts an empty one that carries `clear_lsn`, which hides every older layer.

use std::sync::Arc;

use eddy_wal::Lsn;
use rustc_hash::FxHashMap;

use crate::analysis::DocTerms;
use crate::error::Result;
use crate::hidden::{DocBits, DocsOfKey, HiddenCache, LayerId, ShadowLog};

/// Stable 64-bit hash of a primary key, stored with every document (memtable and segment)
/// so that shadow checks on segment documents can probe a hash set before comparing keys.
pub fn pk_hash(pk: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(pk.as_bytes())
}

/// What a lookup in the layers older than a memtable found for a primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OlderVersion {
    /// Number of tokens of the older version.
    pub len: u32,
    /// Ordering key of the document (kept across versions).
    pub seq: u64,
}

/// A document ready to be inserted: analyzed, with its id and ordering key.
#[derive(Debug, Clone)]
pub struct PreparedDoc {
    /// Primary key value.
    pub pk: Arc<str>,
    /// The document as stored (compact JSON).
    pub json: Arc<[u8]>,
    /// Distinct terms with their positions (ascending); its length is the number of tokens.
    pub terms: DocTerms,
    /// Ordering key if the document is new (used when no older version exists).
    pub new_seq: u64,
    /// The version in older layers, if any (looked up by the write path).
    pub older: Option<OlderVersion>,
}

#[derive(Debug, Clone)]
struct Slot {
    pk: Arc<str>,
    lsn: Lsn,
    dead_lsn: Lsn,
    seq: u64,
    len: u32,
    json: Arc<[u8]>,
}

#[derive(Debug, Clone)]
struct PkEntry {
    /// LSN at which this memtable first had an entry for the key.
    first_lsn: Lsn,
    /// Current live slot, or `None` for a tombstone.
    current: Option<u32>,
    /// LSN of the latest change to the key.
    last_lsn: Lsn,
    /// Whether an older layer holds a version this memtable hides.
    shadows_older: bool,
}

/// One posting: a slot, its term frequency and where its positions start in the memtable's
/// position list.
#[derive(Debug, Clone, Copy)]
struct Posting {
    slot: u32,
    tf: u32,
    pos_start: u32,
}

#[derive(Debug, Default)]
struct TermPostings {
    entries: Vec<Posting>,
}

impl TermPostings {
    /// Heap bytes of the list, by capacity.
    fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Posting>()
    }
}

/// The terms added since the last seal, as runs of term ids sorted by their terms, which
/// searches build when they walk them (see [`MemReader::recent_terms`]). Writers only append
/// to the memtable's term list: keeping a sorted map up to date on every new term was a
/// quarter of the time writes spend in the memtable (its string comparisons chase pointers).
#[derive(Debug, Default)]
struct RecentRuns {
    /// Term ids from the sealed bound up to this one are in `runs`.
    upto: u32,
    /// Each run sorted by term bytes, each more than twice as long as the next (a binary
    /// counter: a term is merged a logarithmic number of times).
    runs: Vec<Arc<[u32]>>,
}

impl RecentRuns {
    fn bytes(&self) -> usize {
        self.runs
            .iter()
            .map(|r| arc_bytes(r.len() * 4))
            .sum::<usize>()
            + self.runs.capacity() * std::mem::size_of::<Arc<[u32]>>()
    }
}

/// Counters describing the memtable at its visible LSN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemStats {
    /// Live documents in this memtable.
    pub live_docs: u64,
    /// Tokens of live documents.
    pub live_tokens: u64,
    /// Older-layer versions this memtable hides.
    pub dead_docs: u64,
    /// Tokens of those hidden versions.
    pub dead_tokens: u64,
}

/// One document the flusher writes into a segment: a live version the memtable holds.
#[derive(Debug, Clone)]
pub struct SegmentDoc {
    /// The memtable slot of the version.
    pub slot: u32,
    /// Primary key.
    pub pk: Arc<str>,
    /// Stored JSON.
    pub json: Arc<[u8]>,
    /// Number of tokens.
    pub len: u32,
    /// Ordering key.
    pub seq: u64,
    /// Version LSN.
    pub lsn: Lsn,
}

/// What the flusher writes to Tantivy for a memtable.
#[derive(Debug, Clone, Default)]
pub struct FlushPlan {
    /// The live versions, in slot order (the order they were written).
    pub docs: Vec<SegmentDoc>,
    /// The keys whose versions in older layers the memtable hides (replaced or deleted),
    /// each with the LSN from which it hides them. Every older version has a smaller LSN,
    /// and every version this memtable or a newer one writes has this LSN or a greater one.
    pub older: Vec<(Arc<str>, Lsn)>,
}

/// The in-memory inverted index of one index's recent writes.
#[derive(Debug)]
pub struct Memtable {
    id: u64,
    first_lsn: Option<Lsn>,
    last_lsn: Lsn,
    visible_lsn: Lsn,
    clear_lsn: Option<Lsn>,
    frozen: bool,
    slots: Vec<Slot>,
    /// BM25 fieldnorm id of each slot, apart from the slots: ranking reads it for every
    /// posting, and a dense byte array stays in cache where 64-byte slots did not (the
    /// slot loads were a sixth of evaluating a memtable).
    fieldnorms: Vec<u8>,
    pks: FxHashMap<Arc<str>, PkEntry>,
    shadow_hashes: FxHashMap<u64, u32>,
    /// The keys counted in `shadow_hashes`, in LSN order, and the segment documents they
    /// hide (see [`crate::hidden`]).
    shadow_log: ShadowLog,
    hidden: HiddenCache,
    term_ids: FxHashMap<Arc<str>, u32>,
    /// Term of each term id.
    terms: Vec<Arc<str>>,
    /// Terms added since the dictionary was last sealed, in order.
    /// (The keys share the allocations of `terms`.)
    recent: parking_lot::Mutex<RecentRuns>,
    /// Whether a search walked the recent terms since the last seal (see
    /// [`Memtable::seal_input`]).
    walked: std::sync::atomic::AtomicBool,
    /// Every other term, as an FST (term -> term id): automata intersect it natively, so
    /// typo and prefix derivations cost what they cost on a segment.
    sealed: Option<Arc<tantivy_fst::Map<Vec<u8>>>>,
    /// Terms with ids below this are in `sealed`.
    sealed_upto: u32,
    postings: Vec<TermPostings>,
    /// The positions of every posting, in insertion order: a document's positions are
    /// appended together, so inserting it writes one place in memory rather than one list
    /// per term (a list per term was a cache miss and often an allocation per token).
    positions: Vec<u32>,
    visible: MemStats,
    pending: MemStats,
    /// Heap bytes of the individual items: shared payloads, posting-list allocations (by
    /// capacity), the recent-term map and the sealed FST. The containers' own tables are
    /// added by [`Memtable::bytes`] from their capacities.
    item_bytes: usize,
}

/// What the allocator really hands out for `n` requested bytes: jemalloc's size classes
/// are 16 bytes apart up to 128 and a quarter of a power of two above.
fn alloc_bytes(n: usize) -> usize {
    let spacing = (n.next_power_of_two() / 8).max(16);
    n.next_multiple_of(spacing)
}

/// Heap bytes of an `Arc<str>` / `Arc<[u8]>` of `len` bytes (two counters precede them).
fn arc_bytes(len: usize) -> usize {
    alloc_bytes(16 + len)
}

/// Heap bytes of a hash table with room for `capacity` entries of `entry` bytes (hashbrown
/// keeps a seventh of its buckets free and one control byte per bucket).
fn table_bytes(capacity: usize, entry: usize) -> usize {
    capacity * 8 / 7 * (entry + 1)
}

impl Memtable {
    /// An empty memtable. `clear_lsn` makes it hide every older layer from that LSN on.
    pub fn new(id: u64, clear_lsn: Option<Lsn>) -> Memtable {
        Memtable {
            id,
            first_lsn: clear_lsn,
            last_lsn: clear_lsn.unwrap_or(0),
            visible_lsn: clear_lsn.unwrap_or(0),
            clear_lsn,
            frozen: false,
            slots: Vec::new(),
            fieldnorms: Vec::new(),
            pks: FxHashMap::default(),
            shadow_hashes: FxHashMap::default(),
            shadow_log: ShadowLog::default(),
            hidden: HiddenCache::default(),
            term_ids: FxHashMap::default(),
            terms: Vec::new(),
            recent: parking_lot::Mutex::new(RecentRuns::default()),
            walked: std::sync::atomic::AtomicBool::new(false),
            sealed: None,
            sealed_upto: 0,
            postings: Vec::new(),
            positions: Vec::new(),
            visible: MemStats::default(),
            pending: MemStats::default(),
            item_bytes: 0,
        }
    }

    /// Reserves room for as many terms and documents as `previous` holds: the next memtable
    /// of a steady load fills its tables about as far, and growing them while writers wait
    /// on the memtable lock rehashed every table several times.
    pub fn reserve_like(&mut self, previous: &Memtable) {
        let terms = previous.terms.len();
        let docs = previous.slots.len();
        self.term_ids.reserve(terms);
        self.terms.reserve(terms);
        self.postings.reserve(terms);
        self.pks.reserve(previous.pks.len());
        self.slots.reserve(docs);
        self.fieldnorms.reserve(docs);
        self.positions.reserve(previous.positions.len());
    }

    /// Creation order among the index's memtables.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// First LSN applied (or the clear LSN), `None` when empty.
    pub fn first_lsn(&self) -> Option<Lsn> {
        self.first_lsn
    }

    /// Last LSN applied.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// LSN of the last completed operation: what searches read at.
    pub fn visible_lsn(&self) -> Lsn {
        self.visible_lsn
    }

    /// The LSN of the `delete all` this memtable starts with.
    pub fn clear_lsn(&self) -> Option<Lsn> {
        self.clear_lsn
    }

    /// Whether the memtable is frozen (no more writes).
    pub fn is_frozen(&self) -> bool {
        self.frozen
    }

    /// Freezes the memtable.
    pub fn freeze(&mut self) {
        debug_assert_eq!(
            self.pending, self.visible,
            "freeze in the middle of an operation"
        );
        self.frozen = true;
    }

    /// Heap bytes held, as the allocator counts them: item allocations plus the tables of
    /// every container by capacity, since a growing `Vec` or hash map holds up to twice
    /// what it stores (leaving over-capacity out let the memory budget under-count).
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.item_bytes
            + self.slots.capacity() * size_of::<Slot>()
            + self.fieldnorms.capacity()
            + table_bytes(self.pks.capacity(), size_of::<(Arc<str>, PkEntry)>())
            + table_bytes(self.shadow_hashes.capacity(), size_of::<(u64, u32)>())
            + self.shadow_log.bytes()
            + table_bytes(self.term_ids.capacity(), size_of::<(Arc<str>, u32)>())
            + self.terms.capacity() * size_of::<Arc<str>>()
            + self.postings.capacity() * size_of::<TermPostings>()
            + self.positions.capacity() * size_of::<u32>()
            + self.recent.lock().bytes()
    }

    /// Makes the memtable answer for the log from `lsn` on (its first LSN becomes at most
    /// `lsn`): a rebuilt index's catch-up writes stand for log records from `lsn` on, which a
    /// replay needs until this memtable is flushed.
    pub fn hold_from(&mut self, lsn: Lsn) {
        self.first_lsn = Some(self.first_lsn.map_or(lsn, |first| first.min(lsn)));
    }

    /// Whether nothing was ever applied.
    pub fn is_empty(&self) -> bool {
        self.first_lsn.is_none()
    }

    /// Statistics as of the visible LSN.
    pub fn stats(&self) -> MemStats {
        self.visible
    }

    /// Number of keys that hide an older version.
    pub fn shadow_count(&self) -> usize {
        self.shadow_hashes.values().map(|c| *c as usize).sum()
    }

    fn note_lsn(&mut self, lsn: Lsn) {
        assert!(!self.frozen, "write to a frozen memtable");
        assert!(
            lsn >= self.last_lsn,
            "LSN went backwards: {lsn} < {}",
            self.last_lsn
        );
        self.first_lsn.get_or_insert(lsn);
        self.last_lsn = lsn;
    }

    /// The live version of a key at the *current* (not only visible) state, as the write path
    /// sees it: `Some(Some(slot))` live here, `Some(None)` deleted here, `None` unknown here.
    pub fn current(&self, pk: &str) -> Option<Option<CurrentVersion<'_>>> {
        let entry = self.pks.get(pk)?;
        Some(entry.current.map(|slot| {
            let s = &self.slots[slot as usize];
            CurrentVersion {
                json: &s.json,
                len: s.len,
                seq: s.seq,
            }
        }))
    }

    /// Inserts (or replaces) a document as part of the operation at `lsn`.
    pub fn upsert(&mut self, lsn: Lsn, doc: PreparedDoc) {
        self.note_lsn(lsn);
        let slot_id = u32::try_from(self.slots.len()).expect("fewer than 2^32 slots");
        // One lookup of the key, whether it is new to the memtable or not.
        let seq = match self.pks.entry(doc.pk.clone()) {
            std::collections::hash_map::Entry::Occupied(mut entry) => {
                let entry = entry.get_mut();
                let mut seq = doc.new_seq;
                if let Some(old) = entry.current {
                    let old = &mut self.slots[old as usize];
                    old.dead_lsn = lsn;
                    seq = old.seq;
                    self.pending.live_docs -= 1;
                    self.pending.live_tokens -= u64::from(old.len);
                }
                entry.current = Some(slot_id);
                entry.last_lsn = lsn;
                seq
            }
            std::collections::hash_map::Entry::Vacant(entry) => {
                let (seq, shadows_older) = match doc.older {
                    Some(older) => {
                        self.pending.dead_docs += 1;
                        self.pending.dead_tokens += u64::from(older.len);
                        *self.shadow_hashes.entry(pk_hash(&doc.pk)).or_insert(0) += 1;
                        self.shadow_log.push(lsn, doc.pk.clone());
                        (older.seq, true)
                    }
                    None => (doc.new_seq, false),
                };
                entry.insert(PkEntry {
                    first_lsn: lsn,
                    current: Some(slot_id),
                    last_lsn: lsn,
                    shadows_older,
                });
                seq
            }
        };
        let len = doc.terms.len();
        for (term, positions) in doc.terms.iter() {
            let term_id = match self.term_ids.get(term) {
                Some(id) => *id,
                None => {
                    let id = u32::try_from(self.postings.len()).expect("fewer than 2^32 terms");
                    let key: Arc<str> = Arc::from(term);
                    self.term_ids.insert(key.clone(), id);
                    self.terms.push(key);
                    self.postings.push(TermPostings::default());
                    self.item_bytes += arc_bytes(term.len());
                    id
                }
            };
            let postings = &mut self.postings[term_id as usize];
            let capacity_before = postings.heap_bytes();
            postings.entries.push(Posting {
                slot: slot_id,
                tf: u32::try_from(positions.len()).unwrap_or(u32::MAX),
                // Below 2^32: the engine caps the write buffer at 4 GiB (see
                // `MAX_WRITE_BUFFER_BYTES`), and every position takes 4 bytes of it.
                pos_start: u32::try_from(self.positions.len()).unwrap_or(u32::MAX),
            });
            self.item_bytes += postings.heap_bytes() - capacity_before;
            self.positions.extend_from_slice(positions);
        }
        self.item_bytes += arc_bytes(doc.json.len()) + arc_bytes(doc.pk.len());
        self.pending.live_docs += 1;
        self.pending.live_tokens += u64::from(len);
        self.fieldnorms
            .push(tantivy::fieldnorm::FieldNormReader::fieldnorm_to_id(len));
        self.slots.push(Slot {
            pk: doc.pk,
            lsn,
            dead_lsn: Lsn::MAX,
            seq,
            len,
            json: doc.json,
        });
    }

    /// Deletes a key as part of the operation at `lsn`. `older` is the version in older
    /// layers (looked up by the caller when this memtable does not know the key). Returns
    /// whether a live document was deleted.
    pub fn delete(&mut self, lsn: Lsn, pk: Arc<str>, older: Option<OlderVersion>) -> bool {
        self.note_lsn(lsn);
        if let Some(entry) = self.pks.get_mut(&pk) {
            entry.last_lsn = lsn;
            let Some(old) = entry.current.take() else {
                return false;
            };
            let old = &mut self.slots[old as usize];
            old.dead_lsn = lsn;
            self.pending.live_docs -= 1;
            self.pending.live_tokens -= u64::from(old.len);
            return true;
        }
        let Some(older) = older else {
            return false;
        };
        self.pending.dead_docs += 1;
        self.pending.dead_tokens += u64::from(older.len);
        *self.shadow_hashes.entry(pk_hash(&pk)).or_insert(0) += 1;
        self.shadow_log.push(lsn, pk.clone());
        self.item_bytes += arc_bytes(pk.len());
        self.pks.insert(
            pk,
            PkEntry {
                first_lsn: lsn,
                current: None,
                last_lsn: lsn,
                shadows_older: true,
            },
        );
        true
    }

    /// Marks the operation at `lsn` complete: it becomes visible to searches.
    pub fn finish(&mut self, lsn: Lsn) {
        self.note_lsn(lsn);
        self.visible = self.pending;
        self.visible_lsn = lsn;
    }

    /// When enough terms arrived since the last seal, what a new sealed dictionary is built
    /// from (see [`SealInput::build`], which runs without any lock held). Cheap: the sealed
    /// FST is shared, only the recent terms are copied.
    ///
    /// `min_terms = 0` seals whatever arrived. Otherwise, while writes come in, sealing
    /// is geometric (at least `min_terms` and a quarter of the sealed terms must have
    /// arrived), so each term is copied a bounded number of times: about five times over a
    /// memtable's life (with an eighth it was nine, and sealing took a seventh of the ingest
    /// CPU), while the terms searched outside the FST stay under a fifth of the dictionary.
    /// And it waits for a search to walk the recent terms (a typo or prefix derivation; exact
    /// words are looked up by hash): a bulk load that nobody searches that way would seal
    /// for nothing, and sealing was still a fourteenth of the ingest CPU of WordNet.
    ///
    /// Once writes pause (`idle`), a sixty-fourth of the sealed terms is enough: the walk
    /// of the recent terms was a fifth of a typo search on a memtable, and one more copy
    /// per quiet spell is cheap next to the searches it speeds up.
    pub fn seal_input(&self, min_terms: usize, idle: bool) -> Option<SealInput> {
        let sealed_len = self.sealed.as_ref().map_or(0, |m| m.len());
        let recent = self.unsealed_terms();
        let due = match (min_terms, idle) {
            (0, _) => recent > 0,
            (_, true) => recent > 0 && recent >= sealed_len / 64,
            (min, false) => {
                recent > 0
                    && recent >= min.max(sealed_len / 4)
                    && self.walked.load(std::sync::atomic::Ordering::Relaxed)
            }
        };
        if !due {
            return None;
        }
        let upto = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        Some(SealInput {
            sealed: self.sealed.clone(),
            // Sorted by `build`, with no lock held.
            recent: (self.sealed_upto..upto)
                .map(|id| (Arc::<[u8]>::from(self.terms[id as usize].clone()), id))
                .collect(),
            upto,
        })
    }

    /// Installs a dictionary built from [`Memtable::seal_input`]: terms with ids below
    /// `upto` are in it and leave the recent terms; terms that arrived meanwhile stay there.
    pub fn install_sealed(&mut self, map: tantivy_fst::Map<Vec<u8>>, upto: u32) {
        if upto <= self.sealed_upto {
            return;
        }
        let old_fst = self.sealed.as_ref().map_or(0, |m| m.as_fst().size());
        self.item_bytes = self.item_bytes + map.as_fst().size() - old_fst;
        self.sealed = Some(Arc::new(map));
        self.sealed_upto = upto;
        self.walked
            .store(false, std::sync::atomic::Ordering::Relaxed);
        // The runs are built again from the terms still recent when a search needs them.
        *self.recent.get_mut() = RecentRuns {
            upto,
            runs: Vec::new(),
        };
    }

    /// The tokens of the given slots (ascending), read back from the postings: for each slot
    /// its `(position, term id)` pairs in position order. This is exactly what the write path
    /// indexed, so the flusher hands Tantivy the same tokens without analyzing again.
    pub fn slot_tokens(&self, slots: &[u32]) -> Vec<Vec<(u32, u32)>> {
        let mut out = vec![Vec::new(); slots.len()];
        let (Some(&lo), Some(&hi)) = (slots.first(), slots.last()) else {
            return out;
        };
        debug_assert!(slots.windows(2).all(|w| w[0] < w[1]), "slots ascending");
        // Dense map from slot to its index in `slots`.
        let mut index = vec![u32::MAX; (hi - lo) as usize + 1];
        for (i, s) in slots.iter().enumerate() {
            index[(s - lo) as usize] = i as u32;
        }
        for (term_id, postings) in self.postings.iter().enumerate() {
            let start = postings.entries.partition_point(|p| p.slot < lo);
            for p in postings.entries[start..]
                .iter()
                .take_while(|p| p.slot <= hi)
            {
                let i = index[(p.slot - lo) as usize];
                if i == u32::MAX {
                    continue;
                }
                let from = p.pos_start as usize;
                let to = from + p.tf as usize;
                for &pos in &self.positions[from..to] {
                    out[i as usize].push((pos, term_id as u32));
                }
            }
        }
        for tokens in &mut out {
            tokens.sort_unstable();
        }
        out
    }

    /// Terms outside the sealed dictionary (searched by walking sorted runs of them).
    pub fn unsealed_terms(&self) -> usize {
        self.terms.len() - self.sealed_upto as usize
    }

    fn term_bytes(&self, id: u32) -> &[u8] {
        self.terms[id as usize].as_bytes()
    }

    /// The terms from id `from` on, sorted: by their first eight bytes as an integer (no
    /// pointer to chase), then by all of their bytes where those are equal.
    fn sorted_ids(&self, from: u32) -> Vec<u32> {
        let upto = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        let mut keyed: Vec<(u64, u32)> = (from..upto)
            .map(|id| (prefix_key(self.term_bytes(id)), id))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| self.term_bytes(a.1).cmp(self.term_bytes(b.1)))
        });
        keyed.into_iter().map(|(_, id)| id).collect()
    }

    /// The term with id `id` (ids come from [`Memtable::slot_tokens`]).
    pub fn term_text(&self, id: u32) -> &str {
        &self.terms[id as usize]
    }

    /// A read view at snapshot `lsn`.
    pub fn reader(&self, lsn: Lsn) -> MemReader<'_> {
        MemReader { mem: self, lsn }
    }

    /// Every term id, in byte order of its term (the order a segment's dictionary wants):
    /// the sealed dictionary is in that order already, so only the recent terms are sorted,
    /// and merged into it.
    pub fn term_ids_in_order(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.terms.len());
        let recent = self.sorted_ids(self.sealed_upto);
        let mut recent = recent.into_iter().peekable();
        if let Some(sealed) = &self.sealed {
            use tantivy_fst::Streamer;
            let mut stream = sealed.stream();
            while let Some((term, id)) = stream.next() {
                while let Some(id) = recent.next_if(|r| self.term_bytes(*r) < term) {
                    ids.push(id);
                }
                ids.push(u32::try_from(id).unwrap_or(u32::MAX));
            }
        }
        ids.extend(recent);
        debug_assert_eq!(ids.len(), self.terms.len());
        ids
    }

    /// The postings of a term id in the slots `slots`, dead slots included: `(slot,
    /// positions)` by ascending slot, positions ascending within a slot (their count is the
    /// term frequency). The range is found by binary search: a flush writing a memtable as
    /// several segments walks each one's share of a list.
    pub fn term_postings_in(
        &self,
        id: u32,
        slots: std::ops::RangeInclusive<u32>,
    ) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        let entries = &self.postings[id as usize].entries[..];
        let from = entries.partition_point(|p| p.slot < *slots.start());
        let to = entries.partition_point(|p| p.slot <= *slots.end());
        entries[from..to.max(from)].iter().map(move |p| {
            let start = p.pos_start as usize;
            (p.slot, &self.positions[start..start + p.tf as usize])
        })
    }

    /// What the flusher writes: the live versions, and the older versions to delete.
    /// A live slot is its key's current version (a slot dies when its key is written again
    /// or deleted), so the slots in order give the documents without a lookup or a sort.
    pub fn flush_plan(&self) -> FlushPlan {
        let docs = (0u32..)
            .zip(&self.slots)
            .filter(|(_, s)| s.dead_lsn == Lsn::MAX)
            .map(|(slot, s)| SegmentDoc {
                slot,
                pk: s.pk.clone(),
                json: s.json.clone(),
                len: s.len,
                seq: s.seq,
                lsn: s.lsn,
            })
            .collect();
        let older = self
            .pks
            .iter()
            .filter(|(_, e)| e.shadows_older)
            .map(|(pk, e)| (pk.clone(), e.first_lsn))
            .collect();
        FlushPlan { docs, older }
    }
}

/// What a memtable's next sealed dictionary is built from: the current FST and a copy of
/// the terms added since.
pub struct SealInput {
    sealed: Option<Arc<tantivy_fst::Map<Vec<u8>>>>,
    recent: Vec<(Arc<[u8]>, u32)>,
    upto: u32,
}

impl SealInput {
    /// Merges the sealed FST and the recent terms into a new FST (term -> term id). Returns
    /// it with the term-id bound to pass to [`Memtable::install_sealed`].
    pub fn build(mut self) -> Option<(tantivy_fst::Map<Vec<u8>>, u32)> {
        self.recent.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut builder = tantivy_fst::MapBuilder::memory();
        let mut recent = self.recent.iter().peekable();
        if let Some(sealed) = &self.sealed {
            use tantivy_fst::Streamer;
            let mut stream = sealed.stream();
            while let Some((k, v)) = stream.next() {
                while let Some((rk, rv)) = recent.next_if(|(rk, _)| &**rk < k) {
                    builder.insert(rk, u64::from(*rv)).ok()?;
                }
                builder.insert(k, v).ok()?;
            }
        }
        for (rk, rv) in recent {
            builder.insert(rk, u64::from(*rv)).ok()?;
        }
        let bytes = builder.into_inner().ok()?;
        let map = tantivy_fst::Map::from_bytes(bytes).ok()?;
        Some((map, self.upto))
    }
}

/// A live version of a document, as the write path sees it.
#[derive(Debug, Clone, Copy)]
pub struct CurrentVersion<'a> {
    /// Stored JSON.
    pub json: &'a [u8],
    /// Number of tokens.
    pub len: u32,
    /// Ordering key.
    pub seq: u64,
}

/// A memtable read at a snapshot LSN.
#[derive(Clone, Copy)]
pub struct MemReader<'a> {
    mem: &'a Memtable,
    lsn: Lsn,
}

impl<'a> MemReader<'a> {
    /// Snapshot LSN.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The memtable read.
    pub fn memtable(&self) -> &'a Memtable {
        self.mem
    }

    /// Whether the memtable hides every older layer at this snapshot.
    pub fn clears_older(&self) -> bool {
        self.mem.clear_lsn.is_some_and(|l| l <= self.lsn)
    }

    /// Whether a slot is live at the snapshot.
    pub fn slot_visible(&self, slot: u32) -> bool {
        let s = &self.mem.slots[slot as usize];
        s.lsn <= self.lsn && self.lsn < s.dead_lsn
    }

    /// Number of slots.
    pub fn slot_count(&self) -> u32 {
        u32::try_from(self.mem.slots.len()).unwrap_or(u32::MAX)
    }

    /// Whether this memtable, at the snapshot, has any entry for the key — i.e. hides every
    /// older version of it.
    pub fn hides(&self, pk: &str) -> bool {
        self.mem
            .pks
            .get(pk)
            .is_some_and(|e| e.first_lsn <= self.lsn)
    }

    /// Fast pre-check for [`hides`](Self::hides) on a key known to exist in an older layer:
    /// `false` means certainly not hidden.
    pub fn may_hide_hash(&self, hash: u64) -> bool {
        self.mem.shadow_hashes.contains_key(&hash)
    }

    /// The documents of an older layer that this memtable hides at the snapshot (`None`:
    /// none); see [`crate::hidden`]. `docs_of` finds the layer's documents holding a key.
    ///
    /// # Errors
    /// A lookup in the layer failed.
    pub fn hidden_in(
        &self,
        layer: LayerId,
        max_doc: u32,
        live: &[LayerId],
        docs_of: &mut DocsOfKey<'_>,
    ) -> Result<Option<Arc<DocBits>>> {
        self.mem.hidden.hidden(
            &self.mem.shadow_log,
            self.lsn,
            layer,
            max_doc,
            live,
            docs_of,
        )
    }

    /// Whether any key may hide an older version (fast path for the common append case).
    pub fn hides_anything(&self) -> bool {
        !self.mem.shadow_hashes.is_empty() || self.clears_older()
    }

    /// Primary key of a slot.
    pub fn pk(&self, slot: u32) -> &'a Arc<str> {
        &self.mem.slots[slot as usize].pk
    }

    /// Number of tokens of a slot.
    pub fn len(&self, slot: u32) -> u32 {
        self.mem.slots[slot as usize].len
    }

    /// Ordering key of a slot.
    pub fn seq(&self, slot: u32) -> u64 {
        self.mem.slots[slot as usize].seq
    }

    /// BM25 fieldnorm id of a slot.
    pub fn fieldnorm_id(&self, slot: u32) -> u8 {
        self.mem.fieldnorms[slot as usize]
    }

    /// Stored JSON of a slot.
    pub fn json(&self, slot: u32) -> &'a Arc<[u8]> {
        &self.mem.slots[slot as usize].json
    }

    /// Statistics at the snapshot. Exact when the snapshot is the visible LSN or later; a
    /// reader never uses an older snapshot on an active memtable.
    pub fn stats(&self) -> MemStats {
        self.mem.visible
    }

    /// Cursor over the postings of a term.
    pub fn postings(&self, term: &str) -> Option<MemPostings<'a>> {
        let id = *self.mem.term_ids.get(term)?;
        Some(MemPostings {
            postings: &self.mem.postings[id as usize],
            positions: &self.mem.positions,
            index: 0,
        })
    }

    /// The sealed part of the dictionary (an FST), if any.
    pub fn sealed_terms(&self) -> Option<&'a tantivy_fst::Map<Vec<u8>>> {
        self.mem.sealed.as_deref()
    }

    /// The terms not yet sealed, as sorted runs: the terms that arrived since the last call
    /// are sorted into a new run (merged with the last runs while those are not more than
    /// twice as long). Marks the memtable as walked, so that a busy memtable gets sealed.
    pub fn recent_terms(&self) -> RecentTerms<'a> {
        let mem = self.mem;
        mem.walked.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut recent = mem.recent.lock();
        let len = u32::try_from(mem.terms.len()).unwrap_or(u32::MAX);
        let from = recent.upto.max(mem.sealed_upto);
        if from < len {
            let mut run: Vec<u32> = mem.sorted_ids(from);
            while recent
                .runs
                .last()
                .is_some_and(|last| last.len() <= 2 * run.len())
            {
                if let Some(last) = recent.runs.pop() {
                    run = merge_runs(mem, &last, &run);
                }
            }
            recent.runs.push(run.into());
            recent.upto = len;
        }
        RecentTerms {
            mem,
            runs: recent.runs.clone(),
        }
    }

    /// Number of distinct terms.
    pub fn term_count(&self) -> usize {
        self.mem.terms.len()
    }

    /// Looks a key up: its live slot at the snapshot, if any.
    pub fn slot_of(&self, pk: &str) -> Option<u32> {
        let entry = self.mem.pks.get(pk)?;
        if entry.last_lsn <= self.lsn {
            return entry.current;
        }
        // The latest change belongs to an operation newer than the snapshot: an older version
        // of this memtable may still be the visible one.
        if entry.first_lsn > self.lsn {
            return None;
        }
        (0..self.slot_count())
            .rev()
            .find(|&s| self.slot_visible(s) && &*self.mem.slots[s as usize].pk == pk)
    }
}

/// The first eight bytes of a term, zero-padded, as a big-endian integer: ordering by it
/// agrees with byte order wherever it differs (ties are broken on the whole terms).
fn prefix_key(term: &[u8]) -> u64 {
    let mut key = [0u8; 8];
    let n = term.len().min(8);
    key[..n].copy_from_slice(&term[..n]);
    u64::from_be_bytes(key)
}

/// Two runs of term ids merged into one, by term bytes.
fn merge_runs(mem: &Memtable, a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if mem.term_bytes(a[i]) <= mem.term_bytes(b[j]) {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The recent terms of a memtable as sorted runs (see [`MemReader::recent_terms`]).
pub struct RecentTerms<'a> {
    mem: &'a Memtable,
    runs: Vec<Arc<[u32]>>,
}

impl<'a> RecentTerms<'a> {
    /// Number of runs.
    pub fn run_count(&self) -> usize {
        self.runs.len()
    }

    /// The terms of run `run` in `[lo, hi)` (`hi = None`: unbounded), in byte order (which
    /// for UTF-8 is code-point order).
    pub fn range(
        &self,
        run: usize,
        lo: &[u8],
        hi: Option<&[u8]>,
    ) -> impl Iterator<Item = &'a [u8]> + use<'a, '_> {
        let mem = self.mem;
        let ids: &[u32] = self.runs.get(run).map_or(&[], |r| r);
        let start = ids.partition_point(|id| mem.term_bytes(*id) < lo);
        let end = match hi {
            Some(hi) => ids.partition_point(|id| mem.term_bytes(*id) < hi),
            None => ids.len(),
        };
        ids[start..end.max(start)]
            .iter()
            .map(move |id| mem.term_bytes(*id))
    }
}

/// Cursor over a memtable posting list (slots ascending).
pub struct MemPostings<'a> {
    postings: &'a TermPostings,
    positions: &'a [u32],
    index: usize,
}

impl MemPostings<'_> {
    /// Current slot, or `u32::MAX` when exhausted.
    pub fn doc(&self) -> u32 {
        self.postings
            .entries
            .get(self.index)
            .map_or(u32::MAX, |p| p.slot)
    }

    /// Moves to the next posting.
    pub fn advance(&mut self) -> u32 {
        self.index += 1;
        self.doc()
    }

    /// Moves to the first posting with slot `>= target`.
    pub fn seek(&mut self, target: u32) -> u32 {
        let rest = &self.postings.entries[self.index.min(self.postings.entries.len())..];
        self.index += rest.partition_point(|p| p.slot < target);
        self.doc()
    }

    /// Term frequency in the current slot.
    pub fn term_freq(&self) -> u32 {
        self.postings.entries.get(self.index).map_or(0, |p| p.tf)
    }

    /// Positions of the term in the current slot.
    pub fn positions(&self, out: &mut Vec<u32>) {
        out.clear();
        if let Some(p) = self.postings.entries.get(self.index) {
            let start = p.pos_start as usize;
            out.extend_from_slice(&self.positions[start..start + p.tf as usize]);
        }
    }

    /// Number of postings (visible or not).
    pub fn len(&self) -> usize {
        self.postings.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.postings.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The recent terms in `[lo, hi)`, from every run, in byte order.
    fn recent_in<'a>(r: &MemReader<'a>, lo: &[u8], hi: Option<&[u8]>) -> Vec<&'a [u8]> {
        let recent = r.recent_terms();
        let mut out: Vec<&[u8]> = (0..recent.run_count())
            .flat_map(|run| recent.range(run, lo, hi).collect::<Vec<_>>())
            .collect();
        out.sort_unstable();
        out
    }

    fn doc(pk: &str, words: &[&str], seq: u64, older: Option<OlderVersion>) -> PreparedDoc {
        let tokens: Vec<crate::analysis::Token> = words
            .iter()
            .enumerate()
            .map(|(i, w)| crate::analysis::Token {
                position: i as u32,
                term: w.to_string(),
            })
            .collect();
        PreparedDoc {
            pk: Arc::from(pk),
            json: Arc::from(format!("{{\"id\":\"{pk}\"}}").into_bytes()),
            terms: DocTerms::from_tokens(&tokens),
            new_seq: seq,
            older,
        }
    }

    fn visible_slots(m: &Memtable, lsn: Lsn, term: &str) -> Vec<u32> {
        let r = m.reader(lsn);
        let mut out = Vec::new();
        if let Some(mut p) = r.postings(term) {
            while p.doc() != u32::MAX {
                if r.slot_visible(p.doc()) {
                    out.push(p.doc());
                }
                p.advance();
            }
        }
        out
    }

    #[test]
    fn snapshot_hides_unfinished_and_replaced_versions() {
        let mut m = Memtable::new(1, None);
        m.upsert(1, doc("a", &["red", "fox"], 10, None));
        m.finish(1);
        m.upsert(2, doc("a", &["blue", "fox"], 20, None));
        // Operation 2 is not finished: readers at the visible LSN still see version 1.
        assert_eq!(m.visible_lsn(), 1);
        assert_eq!(visible_slots(&m, m.visible_lsn(), "red"), vec![0]);
        assert_eq!(
            visible_slots(&m, m.visible_lsn(), "blue"),
            Vec::<u32>::new()
        );
        m.finish(2);
        assert_eq!(visible_slots(&m, 2, "red"), Vec::<u32>::new());
        assert_eq!(visible_slots(&m, 2, "blue"), vec![1]);
        assert_eq!(visible_slots(&m, 2, "fox"), vec![1]);
        // The ordering key survives the replacement.
        assert_eq!(m.reader(2).seq(1), 10);
        assert_eq!(m.stats().live_docs, 1);
        assert_eq!(m.stats().live_tokens, 2);
    }

    /// A lower bound on the heap a memtable holds, walked item by item: every allocation at
    /// its capacity, hash tables at their entries alone.
    fn heap_floor(m: &Memtable) -> usize {
        use std::mem::size_of;
        let postings: usize = m.postings.iter().map(TermPostings::heap_bytes).sum();
        let terms: usize = m.terms.iter().map(|t| 16 + t.len()).sum();
        let slots: usize = m.slots.iter().map(|s| 32 + s.json.len() + s.pk.len()).sum();
        postings
            + terms
            + slots
            + m.sealed.as_ref().map_or(0, |f| f.as_fst().size())
            + m.slots.capacity() * size_of::<Slot>()
            + m.pks.capacity() * size_of::<(Arc<str>, PkEntry)>()
            + m.term_ids.capacity() * size_of::<(Arc<str>, u32)>()
            + m.terms.capacity() * size_of::<Arc<str>>()
            + m.postings.capacity() * size_of::<TermPostings>()
            + m.positions.capacity() * size_of::<u32>()
    }

    #[test]
    fn byte_count_covers_the_heap_held() {
        // Many rare short terms (as in a Zipf corpus) and a few frequent ones: the posting
        // lists and tables hold spare capacity that a per-item estimate missed (memory
        // budget M1 under-counted, and the process outgrew it).
        let mut m = Memtable::new(1, None);
        let mut words = Vec::new();
        for i in 0..3000u64 {
            words.clear();
            for j in 0..20u64 {
                words.push(format!("w{}", (i * 7 + j * 13) % 5000));
            }
            words.push("the".to_string());
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            m.upsert(i + 1, doc(&format!("d{i}"), &refs, i, None));
            m.finish(i + 1);
            let (bytes, floor) = (m.bytes(), heap_floor(&m));
            assert!(
                bytes >= floor,
                "after {i} docs: counted {bytes} < held {floor}"
            );
            assert!(
                bytes <= 2 * floor,
                "after {i} docs: counted {bytes} > 2 x {floor}"
            );
            if i % 500 == 499
                && let Some((map, upto)) = m.seal_input(0, false).and_then(SealInput::build)
            {
                // Sealing moves terms into an FST; the count follows.
                m.install_sealed(map, upto);
                assert!(m.bytes() >= heap_floor(&m));
            }
        }
    }

    #[test]
    fn shadowing_counts_older_versions_once() {
        let mut m = Memtable::new(1, None);
        let older = Some(OlderVersion { len: 7, seq: 3 });
        m.upsert(5, doc("x", &["a"], 99, older));
        m.finish(5);
        assert!(m.reader(5).hides("x"));
        assert!(!m.reader(4).hides("x"));
        m.upsert(6, doc("x", &["b"], 99, older));
        m.delete(6, Arc::from("x"), older);
        m.finish(6);
        let s = m.stats();
        assert_eq!((s.live_docs, s.dead_docs, s.dead_tokens), (0, 1, 7));
        let plan = m.flush_plan();
        assert!(plan.docs.is_empty());
        assert!(matches!(&plan.older[..], [(pk, 5)] if &**pk == "x"));
    }

    #[test]
    fn delete_of_unknown_key_is_a_no_op() {
        let mut m = Memtable::new(1, None);
        assert!(!m.delete(1, Arc::from("nope"), None));
        m.finish(1);
        let plan = m.flush_plan();
        assert!(plan.docs.is_empty() && plan.older.is_empty());
        assert!(!m.reader(1).hides("nope"));
    }

    #[test]
    fn flush_plan_marks_replacements() {
        let mut m = Memtable::new(1, None);
        m.upsert(1, doc("new", &["a"], 1, None));
        m.upsert(
            1,
            doc("old", &["a"], 2, Some(OlderVersion { len: 1, seq: 0 })),
        );
        m.upsert(2, doc("new", &["b"], 3, None));
        m.finish(2);
        let plan = m.flush_plan();
        let docs: Vec<(u32, &str)> = plan.docs.iter().map(|d| (d.slot, &*d.pk)).collect();
        assert_eq!(docs, vec![(1, "old"), (2, "new")]);
        let older: Vec<(&str, Lsn)> = plan.older.iter().map(|(pk, l)| (&**pk, *l)).collect();
        assert_eq!(older, vec![("old", 1)]);
    }

    #[test]
    fn seek_and_term_order() {
        let mut m = Memtable::new(1, None);
        for i in 0..10u64 {
            m.upsert(
                i + 1,
                doc(&format!("d{i}"), &["common", &format!("t{i}")], i, None),
            );
            m.finish(i + 1);
        }
        let r = m.reader(10);
        let mut p = r.postings("common").unwrap();
        assert_eq!(p.seek(4), 4);
        assert_eq!(p.seek(2), 4);
        assert_eq!(p.seek(100), u32::MAX);
        let after = |from: &[u8]| recent_in(&r, from, None).first().copied();
        assert_eq!(after(b"t5"), Some(&b"t5"[..]));
        assert_eq!(after(b"t50"), Some(&b"t6"[..]));
        assert_eq!(after(b"u"), None);
        assert_eq!(r.term_count(), 11);
    }

    #[test]
    fn sealing_is_geometric_while_busy_and_nearly_complete_once_idle() {
        let mut m = Memtable::new(1, None);
        let mut lsn = 0;
        let mut add = |m: &mut Memtable, prefix: &str, n: u64| {
            for i in 0..n {
                lsn += 1;
                let term = format!("{prefix}{i}");
                m.upsert(lsn, doc(&format!("{prefix}-{i}"), &[&term], lsn, None));
                m.finish(lsn);
            }
        };
        let seal = |m: &mut Memtable, min: usize, idle: bool| {
            let input = m.seal_input(min, idle);
            let sealed = input.is_some();
            if let Some((map, upto)) = input.and_then(SealInput::build) {
                m.install_sealed(map, upto);
            }
            sealed
        };
        let walk = |m: &Memtable| recent_in(&m.reader(u64::MAX), b"", None).len();
        add(&mut m, "a", 640);
        assert!(
            !seal(&mut m, 100, false),
            "no search walked the recent terms"
        );
        walk(&m);
        assert!(!seal(&mut m, 1000, false), "under the minimum");
        assert!(seal(&mut m, 100, false));
        assert_eq!(m.unsealed_terms(), 0);
        // 640 sealed: busy needs a quarter (160), idle a sixty-fourth (10).
        add(&mut m, "b", 159);
        walk(&m);
        assert!(!seal(&mut m, 100, false));
        assert!(seal(&mut m, 100, true));
        assert_eq!(m.unsealed_terms(), 0);
        add(&mut m, "c", 9);
        assert!(!seal(&mut m, 100, true), "too few to be worth a copy");
        assert!(seal(&mut m, 0, false), "0 seals whatever arrived");
        assert_eq!(m.unsealed_terms(), 0);
        assert!(!seal(&mut m, 0, true), "nothing left");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Terms arriving between searches and seals: every search finds, in any range,
        /// exactly the terms not yet sealed, from runs that are each sorted and few.
        #[test]
        fn recent_runs_hold_exactly_the_unsealed_terms(
            steps in proptest::collection::vec(
                (0u8..3, proptest::collection::vec("(aaaaaaa)?[a-d]{1,3}", 1..20), "[a-e]{0,2}", "[a-e]{0,2}"),
                1..40,
            )
        ) {
            let mut m = Memtable::new(1, None);
            let mut lsn = 0;
            let mut sealed = std::collections::BTreeSet::new();
            let mut all = std::collections::BTreeSet::new();
            for (kind, words, lo, hi) in steps {
                lsn += 1;
                let refs: Vec<&str> = words.iter().map(String::as_str).collect();
                m.upsert(lsn, doc(&format!("d{lsn}"), &refs, lsn, None));
                m.finish(lsn);
                all.extend(words);
                match kind {
                    0 => {
                        if let Some((map, upto)) = m.seal_input(0, false).and_then(SealInput::build) {
                            m.install_sealed(map, upto);
                            sealed = all.clone();
                        }
                    }
                    _ => {
                        let r = m.reader(lsn);
                        let hi = (!hi.is_empty()).then_some(hi.as_bytes());
                        let got = recent_in(&r, lo.as_bytes(), hi);
                        let want: Vec<&[u8]> = all
                            .iter()
                            .filter(|t| !sealed.contains(*t))
                            .map(|t| t.as_bytes())
                            .filter(|t| *t >= lo.as_bytes() && hi.is_none_or(|h| *t < h))
                            .collect();
                        proptest::prop_assert_eq!(got, want);
                        let recent = r.recent_terms();
                        let unsealed = all.len() - sealed.len();
                        proptest::prop_assert!(
                            recent.run_count() <= (usize::BITS - unsealed.leading_zeros()) as usize + 1,
                            "{} runs for {} terms", recent.run_count(), unsealed
                        );
                        for run in 0..recent.run_count() {
                            let terms: Vec<&[u8]> = recent.range(run, b"", None).collect();
                            proptest::prop_assert!(terms.windows(2).all(|w| w[0] < w[1]));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sealing_keeps_every_term_findable() {
        use tantivy_fst::Streamer;
        let mut m = Memtable::new(1, None);
        let mut all = std::collections::BTreeSet::new();
        for i in 0..500u64 {
            // Terms arrive out of order, some repeat.
            let a = format!("w{}", (i * 7919) % 613);
            let b = format!("x{}", i % 37);
            all.insert(a.clone());
            all.insert(b.clone());
            m.upsert(i + 1, doc(&format!("d{i}"), &[&a, &b], i, None));
            m.finish(i + 1);
            // A search walks the recent terms now and then (busy sealing waits for one).
            if i % 10 == 0 {
                recent_in(&m.reader(i + 1), b"w", None);
            }
            if let Some(input) = m.seal_input(5, false) {
                let (map, upto) = input.build().unwrap();
                // Terms may arrive between building and installing.
                let late = format!("late{i}");
                all.insert(late.clone());
                m.upsert(i + 1, doc(&format!("late{i}"), &[&late], i, None));
                m.finish(i + 1);
                m.install_sealed(map, upto);
            }
        }
        let r = m.reader(500);
        let sealed = r.sealed_terms().expect("sealed at least once");
        let mut seen = Vec::new();
        let mut stream = sealed.stream();
        while let Some((k, id)) = stream.next() {
            let term = String::from_utf8(k.to_vec()).unwrap();
            // The FST maps each term to its postings.
            assert_eq!(Some(id as u32), m.term_ids.get(term.as_str()).copied());
            seen.push(term);
        }
        let sealed_count = seen.len();
        seen.extend(
            recent_in(&r, b"", None)
                .into_iter()
                .map(|t| String::from_utf8(t.to_vec()).unwrap()),
        );
        assert!(
            sealed_count > 0 && seen.len() > sealed_count,
            "both parts in use"
        );
        seen.sort();
        assert_eq!(seen, all.into_iter().collect::<Vec<_>>());
        assert_eq!(r.term_count(), seen.len());
    }
}
