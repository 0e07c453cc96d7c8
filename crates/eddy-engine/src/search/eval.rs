//! Matching and ranking over a snapshot.
//!
//! The evaluator walks, layer by layer, the union of the postings of every derived term,
//! decides for each visible document which query terms it matches, and ranks matched
//! documents by `(words bucket, BM25, insertion order)`. Plans of plain words go term at a
//! time through windows of documents ([`WINDOW`]); phrases, alternatives and restrictions
//! need every cursor on the current document, so those plans go document at a time.
//!
//! - *Matching strategy* decides which documents qualify and their bucket: `last` keeps
//!   documents matching at least the first term, bucketed by how many leading terms they
//!   match (Meilisearch drops words from the end of the query); `all` requires every term;
//!   `any` (eddy's `bm25` rule) keeps documents matching any term in one bucket.
//! - *BM25* sums, over matched terms, the best-scoring derivation of each word (a derivation
//!   with `t` typos counts `1 / (1 + t)` of its score); a phrase scores like Tantivy's phrase
//!   query: summed idf, phrase frequency.
//! - Ties keep insertion order (`seq`), which does not depend on layers either.
//! - *Alternatives* (multi-word synonyms) stand for a run of consecutive query terms: a
//!   document containing an alternative's words at consecutive positions matches every
//!   term of the run, each scoring an equal share of the alternative's BM25 score.
//! - *Time budget*: a [`TopK`] may carry a deadline (`searchCutoffMs`), checked every
//!   [`CHECK_EVERY`] documents; once it has passed, the collector is marked `degraded` and
//!   evaluation goes on only until it holds a full page (Meilisearch's degraded search:
//!   the best documents found so far, up to `limit`, the rest of the ranking skipped).
//!
//! - *Restricted matching* (`searchableAttributes`, `attributesToSearchOn`,
//!   `typoTolerance.disableOnAttributes`): with a [`Restriction`], a term counts toward the
//!   words bucket only where it occurs in an allowed attribute (and, for a derivation with
//!   typos, one where typos are allowed) — read from the attribute rank its positions
//!   encode. BM25 still scores every attribute.
//!
//! Every input of the ranking key is layer-independent, so results are the same whichever
//! layer holds each document.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::ops::Range;
use std::time::Instant;

use super::layers::{Cursor, DocRef, END, Snapshot};
use crate::bm25::TermWeight;
use crate::error::Result;

/// Which documents a query matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// At least the first term; more leading terms rank higher (Meilisearch's default).
    #[default]
    Last,
    /// Every term.
    All,
    /// Any term (eddy's `bm25` ranking rule).
    Any,
}

impl Strategy {
    /// The words bucket of a document matching the query terms in `mask` (of `n_groups`);
    /// 0 when it does not qualify.
    #[inline]
    fn bucket(self, mask: u64, n_groups: usize) -> u32 {
        match self {
            Strategy::Last => mask.trailing_ones(),
            Strategy::All if mask.count_ones() as usize == n_groups => n_groups as u32,
            Strategy::All => 0,
            Strategy::Any => u32::from(mask != 0),
        }
    }
}

/// One derivation of a query word, ready to score.
pub struct WeightedTerm {
    /// Indexed term.
    pub term: String,
    /// Typos.
    pub typos: u8,
    /// BM25 weight.
    pub weight: TermWeight,
}

/// A query term, ready to evaluate.
pub enum Group {
    /// A word: any of its derivations.
    Word(Vec<WeightedTerm>),
    /// A phrase: consecutive words, one weight.
    Phrase {
        /// Words in order.
        words: Vec<String>,
        /// Summed-idf weight.
        weight: TermWeight,
    },
}

/// Words that stand for a run of consecutive query terms (a synonym of one word or of
/// several consecutive words); several words match as a phrase.
pub struct Alternative {
    /// The query terms (indices into [`Plan::groups`]) a match counts for.
    pub groups: Range<usize>,
    /// Words in order (one word, or a phrase).
    pub words: Vec<String>,
    /// BM25 weight (summed idf for a phrase).
    pub weight: TermWeight,
}

/// Where matches count, per attribute rank (the index's field ids, which positions
/// encode: see [`crate::analysis::encode_position`]).
#[derive(Debug, Clone, Default)]
pub struct Restriction {
    /// Per rank: whether matches there count (ranks past the end do not).
    pub allowed: Vec<bool>,
    /// Per rank: whether matches with typos count there.
    pub typos_ok: Vec<bool>,
}

impl Restriction {
    /// Whether a match at an encoded position counts.
    #[inline]
    fn counts(&self, position: u32, typos: bool) -> bool {
        let rank = crate::analysis::position_rank(position) as usize;
        self.allowed.get(rank).copied().unwrap_or(false)
            && (!typos || self.typos_ok.get(rank).copied().unwrap_or(false))
    }
}

/// What to evaluate.
pub struct Plan {
    /// Terms in query order.
    pub groups: Vec<Group>,
    /// Alternatives of runs of terms (multi-word synonyms).
    pub alternatives: Vec<Alternative>,
    /// Excluded words or phrases.
    pub excluded: Vec<Vec<String>>,
    /// Matching strategy.
    pub strategy: Strategy,
    /// Attributes where matches count toward the words bucket (`None` = all).
    pub restrict: Option<Restriction>,
}

/// A matched document with its ranking key.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Words bucket (higher is better).
    pub bucket: u32,
    /// BM25 score.
    pub score: f32,
    /// Insertion order (lower first among ties).
    pub seq: u64,
    /// Where the document lives.
    pub doc: DocRef,
}

impl Candidate {
    /// Orders candidates best first.
    pub fn rank_cmp(&self, other: &Candidate) -> Ordering {
        other
            .bucket
            .cmp(&self.bucket)
            .then_with(|| other.score.total_cmp(&self.score))
            .then_with(|| self.seq.cmp(&other.seq))
            .then_with(|| self.doc.cmp(&other.doc))
    }
}

struct Worst(Candidate);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    /// The worst candidate is the greatest, so it sits on top of the max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// Documents examined between two looks at the clock.
pub const CHECK_EVERY: u32 = 256;

/// Keeps the best `k` candidates and counts all of them.
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
    /// Number of candidates offered.
    pub count: u64,
    deadline: Option<Instant>,
    /// Matches evaluation still collects once the deadline has passed (a full page).
    fill: usize,
    ticks: u32,
    /// Whether the deadline passed (results are partial).
    pub degraded: bool,
    /// Whether candidates get their insertion order (see [`TopK::without_seq`]).
    read_seq: bool,
}

impl TopK {
    /// A collector of the best `k`.
    pub fn new(k: usize) -> TopK {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(4096) + 1),
            count: 0,
            deadline: None,
            fill: k,
            ticks: 0,
            degraded: false,
            read_seq: true,
        }
    }

    /// Candidates get `seq` 0 (ties then go by document): for a caller that keeps every
    /// match and reads the insertion order only of those that pass its filter.
    pub fn without_seq(self) -> TopK {
        TopK {
            read_seq: false,
            ..self
        }
    }

    /// A collector of the best `k` whose evaluation stops once `deadline` has passed and
    /// `k` documents matched.
    pub fn with_deadline(k: usize, deadline: Option<Instant>) -> TopK {
        TopK::with_deadline_fill(k, deadline, k)
    }

    /// A collector of the best `k` whose evaluation stops once `deadline` has passed and
    /// `fill` documents matched.
    pub fn with_deadline_fill(k: usize, deadline: Option<Instant>, fill: usize) -> TopK {
        TopK {
            deadline,
            fill,
            ..TopK::new(k)
        }
    }

    /// Counts one examined document; whether evaluation should stop: the time budget is
    /// spent and a full page matched. The clock is read every [`CHECK_EVERY`] documents, so
    /// at least that many are always examined.
    pub fn out_of_time(&mut self) -> bool {
        if !self.degraded {
            let Some(deadline) = self.deadline else {
                return false;
            };
            self.ticks += 1;
            if self.ticks < CHECK_EVERY {
                return false;
            }
            self.ticks = 0;
            self.degraded = Instant::now() >= deadline;
        }
        self.degraded && self.count >= self.fill as u64
    }

    /// Whether evaluation stopped early (the deadline passed and the page is full).
    pub fn stopped(&self) -> bool {
        self.degraded && self.count >= self.fill as u64
    }

    /// Offers a candidate.
    pub fn push(&mut self, c: Candidate) {
        self.count += 1;
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(Worst(c));
        } else if let Some(worst) = self.heap.peek()
            && c.rank_cmp(&worst.0) == Ordering::Less
        {
            self.heap.pop();
            self.heap.push(Worst(c));
        }
    }

    /// Offers a candidate whose insertion order is read only when it is needed: when the
    /// collector is full, a candidate ranked below the worst kept one by `(bucket, score)`
    /// is only counted. Most matches of a broad query are such, and reading `seq` from a
    /// segment's column for each was a tenth of a search.
    pub fn push_with_seq(
        &mut self,
        bucket: u32,
        score: f32,
        doc: DocRef,
        seq: impl FnOnce() -> u64,
    ) {
        if self.k > 0
            && self.heap.len() >= self.k
            && let Some(worst) = self.heap.peek()
            && (worst.0.bucket, worst.0.score).partial_cmp(&(bucket, score))
                == Some(Ordering::Greater)
        {
            self.count += 1;
            return;
        }
        self.push(Candidate {
            bucket,
            score,
            seq: if self.read_seq { seq() } else { 0 },
            doc,
        });
    }

    /// The kept candidates, best first.
    pub fn into_sorted(self) -> Vec<Candidate> {
        let mut v: Vec<Candidate> = self.heap.into_iter().map(|w| w.0).collect();
        v.sort_by(Candidate::rank_cmp);
        v
    }
}

struct Slot<'a> {
    cursor: SlotCursor<'a>,
    group: usize,
    /// Index of the derivation within a word group (0 for a phrase).
    member: usize,
}

/// What a slot walks: one derivation's postings, or the documents holding every word of a
/// phrase (an intersection, leapfrogging with `seek`, so that a phrase of frequent words
/// costs what its rarest word costs; positions are only read in those documents).
enum SlotCursor<'a> {
    One(Cursor<'a>),
    /// The cursors of the words and the document they agree on ([`END`] once one of them is
    /// exhausted; the others may then sit anywhere).
    All(Vec<Cursor<'a>>, u32),
}

impl SlotCursor<'_> {
    fn doc(&self) -> u32 {
        match self {
            SlotCursor::One(c) => c.doc(),
            SlotCursor::All(_, doc) => *doc,
        }
    }

    fn advance(&mut self) -> u32 {
        match self {
            SlotCursor::One(c) => c.advance(),
            SlotCursor::All(cs, doc) => {
                if *doc != END {
                    let next = cs.first_mut().map_or(END, Cursor::advance);
                    *doc = if next == END { END } else { align(cs) };
                }
                *doc
            }
        }
    }
}

/// The intersection cursor of a phrase's words (with positions); `None` when a word is
/// missing from the layer, so that no document of it holds the phrase.
fn phrase_cursor<'a>(
    snapshot: &Snapshot<'a>,
    layer: u32,
    words: &[String],
) -> Result<Option<SlotCursor<'a>>> {
    let mut cursors = Vec::with_capacity(words.len());
    for w in words {
        match snapshot.cursor(layer, w, true)? {
            Some(c) => cursors.push(c),
            None => return Ok(None),
        }
    }
    if cursors.is_empty() {
        return Ok(None);
    }
    let doc = align(&mut cursors);
    Ok(Some(SlotCursor::All(cursors, doc)))
}

/// Moves every cursor to the first document all of them hold (or [`END`]).
fn align(cursors: &mut [Cursor<'_>]) -> u32 {
    let mut target = cursors.iter().map(Cursor::doc).max().unwrap_or(END);
    loop {
        if target == END {
            return END;
        }
        let mut agreed = true;
        for c in cursors.iter_mut() {
            let d = c.seek(target);
            if d != target {
                target = d;
                agreed = false;
                break;
            }
        }
        if agreed {
            return target;
        }
    }
}

/// Evaluates a placeholder search: every visible document, in insertion order.
pub fn placeholder(snapshot: &Snapshot<'_>, top: &mut TopK) {
    snapshot.for_each_visible(|doc| {
        if top.out_of_time() {
            return;
        }
        top.push(Candidate {
            bucket: 0,
            score: 0.0,
            seq: snapshot.seq(doc.layer, doc.doc),
            doc,
        });
    });
}

/// Evaluates a plan over every layer of a snapshot.
pub fn evaluate(snapshot: &Snapshot<'_>, plan: &Plan, top: &mut TopK) -> Result<()> {
    let mut window = Window::default();
    for layer in 0..snapshot.layer_count() {
        if top.stopped() {
            break;
        }
        evaluate_layer(snapshot, layer, plan, top, &mut window)?;
    }
    Ok(())
}

fn evaluate_layer(
    snapshot: &Snapshot<'_>,
    layer: u32,
    plan: &Plan,
    top: &mut TopK,
    window: &mut Window,
) -> Result<()> {
    let restrict = plan.restrict.as_ref();
    let mut slots: Vec<Slot<'_>> = Vec::new();
    for (g, group) in plan.groups.iter().enumerate() {
        match group {
            Group::Word(derivations) => {
                for (i, d) in derivations.iter().enumerate() {
                    if let Some(cursor) = snapshot.cursor(layer, &d.term, restrict.is_some())? {
                        slots.push(Slot {
                            cursor: SlotCursor::One(cursor),
                            group: g,
                            member: i,
                        });
                    }
                }
            }
            Group::Phrase { words, .. } => {
                if let Some(cursor) = phrase_cursor(snapshot, layer, words)? {
                    slots.push(Slot {
                        cursor,
                        group: g,
                        member: 0,
                    });
                }
            }
        }
    }
    // Alternatives take the slot groups after the plan's groups.
    let n_groups = plan.groups.len();
    for (a, alt) in plan.alternatives.iter().enumerate() {
        let cursor = match alt.words.as_slice() {
            [word] => snapshot
                .cursor(layer, word, restrict.is_some())?
                .map(SlotCursor::One),
            words => phrase_cursor(snapshot, layer, words)?,
        };
        if let Some(cursor) = cursor {
            slots.push(Slot {
                cursor,
                group: n_groups + a,
                member: 0,
            });
        }
    }
    if slots.is_empty() {
        return Ok(());
    }
    let mut excluded: Vec<Vec<Option<Cursor<'_>>>> = Vec::with_capacity(plan.excluded.len());
    for words in &plan.excluded {
        let mut cs = Vec::with_capacity(words.len());
        for w in words {
            cs.push(snapshot.cursor(layer, w, words.len() > 1)?);
        }
        excluded.push(cs);
    }

    let words_only = restrict.is_none()
        && plan.alternatives.is_empty()
        && plan.groups.iter().all(|g| matches!(g, Group::Word(_)));
    if words_only {
        window.evaluate(snapshot, layer, plan, &mut slots, &mut excluded, top);
        return Ok(());
    }

    let mut heap: BinaryHeap<Reverse<(u32, usize)>> = slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.cursor.doc() != END)
        .map(|(i, s)| Reverse((s.cursor.doc(), i)))
        .collect();
    let mut at_doc: Vec<usize> = Vec::with_capacity(slots.len());
    let mut best = vec![0f32; n_groups];
    let mut phrase_positions: Vec<Vec<u32>> = Vec::new();
    let mut scratch = Vec::new();
    let all_visible = snapshot.all_visible(layer);

    while let Some(Reverse((doc, first))) = heap.pop() {
        if top.out_of_time() {
            break;
        }
        at_doc.clear();
        at_doc.push(first);
        while let Some(Reverse((d, i))) = heap.peek().copied() {
            if d != doc {
                break;
            }
            heap.pop();
            at_doc.push(i);
        }

        if all_visible || snapshot.visible(layer, doc) {
            let fieldnorm_id = snapshot.fieldnorm_id(layer, doc);
            let mut mask: u64 = 0;
            // With a restriction: the groups matched where matches count.
            let mut counted: u64 = 0;
            best.iter_mut().for_each(|b| *b = 0.0);
            for &i in &at_doc {
                let slot = &mut slots[i];
                if let (Some(Group::Word(derivations)), SlotCursor::One(cursor)) =
                    (plan.groups.get(slot.group), &mut slot.cursor)
                {
                    let d = &derivations[slot.member];
                    let s = d.weight.score(fieldnorm_id, cursor.term_freq())
                        / (1.0 + f32::from(d.typos));
                    mask |= 1 << slot.group;
                    if s > best[slot.group] {
                        best[slot.group] = s;
                    }
                    if let Some(r) = restrict
                        && counted & (1 << slot.group) == 0
                    {
                        cursor.positions(&mut scratch);
                        if scratch.iter().any(|&p| r.counts(p, d.typos > 0)) {
                            counted |= 1 << slot.group;
                        }
                    }
                }
            }
            for (g, group) in plan.groups.iter().enumerate() {
                if let Group::Phrase { weight, words } = group {
                    let freq =
                        phrase_freq(&mut slots, &at_doc, g, &mut phrase_positions, &mut scratch);
                    if freq > 0 {
                        mask |= 1 << g;
                        best[g] = weight.score(fieldnorm_id, freq);
                        if let Some(r) = restrict
                            && any_consecutive(&phrase_positions[..words.len()], |p| {
                                r.counts(p, false)
                            })
                        {
                            counted |= 1 << g;
                        }
                    }
                }
            }
            for (a, alt) in plan.alternatives.iter().enumerate() {
                let slot = at_doc.iter().find(|&&i| slots[i].group == n_groups + a);
                let one = slot.is_some_and(|&i| matches!(slots[i].cursor, SlotCursor::One(_)));
                let (freq, counts) = match slot.copied() {
                    None => (0, false),
                    Some(i) if one => match &mut slots[i].cursor {
                        SlotCursor::One(cursor) => {
                            let freq = cursor.term_freq();
                            let counts = restrict.is_some_and(|r| {
                                cursor.positions(&mut scratch);
                                scratch.iter().any(|&p| r.counts(p, false))
                            });
                            (freq, counts)
                        }
                        SlotCursor::All(..) => (0, false),
                    },
                    Some(_) => {
                        let freq = phrase_freq(
                            &mut slots,
                            &at_doc,
                            n_groups + a,
                            &mut phrase_positions,
                            &mut scratch,
                        );
                        let counts = freq > 0
                            && restrict.is_some_and(|r| {
                                any_consecutive(&phrase_positions[..alt.words.len()], |p| {
                                    r.counts(p, false)
                                })
                            });
                        (freq, counts)
                    }
                };
                if freq == 0 || alt.groups.is_empty() {
                    continue;
                }
                let share = alt.weight.score(fieldnorm_id, freq) / alt.groups.len() as f32;
                for g in alt.groups.clone() {
                    mask |= 1 << g;
                    if counts {
                        counted |= 1 << g;
                    }
                    if share > best[g] {
                        best[g] = share;
                    }
                }
            }
            if restrict.is_some() {
                mask = counted;
            }
            let bucket = plan.strategy.bucket(mask, n_groups);
            if bucket > 0 && !is_excluded(&mut excluded, doc, &mut phrase_positions, &mut scratch) {
                top.push_with_seq(bucket, best.iter().sum(), DocRef { layer, doc }, || {
                    snapshot.seq(layer, doc)
                });
            }
        }

        for &i in &at_doc {
            let next = slots[i].cursor.advance();
            if next != END {
                heap.push(Reverse((next, i)));
            }
        }
    }
    Ok(())
}

/// Documents per window of [`Window::evaluate`].
const WINDOW: u32 = 4096;

/// Per-window arrays of [`Window::evaluate`], allocated once per search (all zero between
/// windows).
#[derive(Default)]
struct Window {
    /// Documents of the window with a posting.
    present: Vec<u64>,
    /// Per document: the words it matches.
    mask: Vec<u64>,
    /// Per document, then per word: the best score of its derivations (a document's words
    /// side by side, so summing them reads one cache line, not one per word).
    best: Vec<f32>,
}

impl Window {
    /// [`evaluate_layer`] for plans of plain words (no phrase, alternative or restriction, the
    /// common case), term at a time within windows of [`WINDOW`] documents: each derivation's
    /// postings in the window are scored into per-word arrays, then the window's documents are
    /// ranked in order. Merging the cursors document at a time through a heap cost a quarter
    /// of a search; the results are the same, down to the order scores are summed in.
    fn evaluate(
        &mut self,
        snapshot: &Snapshot<'_>,
        layer: u32,
        plan: &Plan,
        slots: &mut [Slot<'_>],
        excluded: &mut [Vec<Option<Cursor<'_>>>],
        top: &mut TopK,
    ) {
        let n_groups = plan.groups.len();
        let width = WINDOW as usize;
        if self.mask.is_empty() {
            self.present = vec![0; width / 64];
            self.mask = vec![0; width];
        }
        self.best.resize(n_groups * width, 0.0);
        let Window {
            present,
            mask,
            best,
        } = self;
        let mut positions: Vec<Vec<u32>> = Vec::new();
        let mut scratch = Vec::new();
        let all_visible = snapshot.all_visible(layer);
        let mut base = slots.iter().map(|s| s.cursor.doc()).min().unwrap_or(END);
        while base != END {
            let end = base.saturating_add(WINDOW);
            for slot in slots.iter_mut() {
                let (Some(Group::Word(derivations)), SlotCursor::One(cursor)) =
                    (plan.groups.get(slot.group), &mut slot.cursor)
                else {
                    continue;
                };
                let d = &derivations[slot.member];
                let typos = 1.0 + f32::from(d.typos);
                let bit = 1u64 << slot.group;
                let mut doc = cursor.doc();
                while doc < end {
                    let off = (doc - base) as usize;
                    let s = d
                        .weight
                        .score(snapshot.fieldnorm_id(layer, doc), cursor.term_freq())
                        / typos;
                    present[off / 64] |= 1 << (off % 64);
                    mask[off] |= bit;
                    let b = &mut best[off * n_groups + slot.group];
                    if s > *b {
                        *b = s;
                    }
                    doc = cursor.advance();
                }
            }
            for (w, word) in present.iter_mut().enumerate() {
                let mut bits = std::mem::take(word);
                while bits != 0 {
                    let off = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let m = std::mem::take(&mut mask[off]);
                    let mut score = 0f32;
                    for b in &mut best[off * n_groups..(off + 1) * n_groups] {
                        score += std::mem::take(b);
                    }
                    if top.out_of_time() {
                        return;
                    }
                    let doc = base + off as u32;
                    if !(all_visible || snapshot.visible(layer, doc)) {
                        continue;
                    }
                    let bucket = plan.strategy.bucket(m, n_groups);
                    if bucket > 0 && !is_excluded(excluded, doc, &mut positions, &mut scratch) {
                        top.push_with_seq(bucket, score, DocRef { layer, doc }, || {
                            snapshot.seq(layer, doc)
                        });
                    }
                }
            }
            base = slots.iter().map(|s| s.cursor.doc()).min().unwrap_or(END);
        }
    }
}

/// Number of occurrences of a phrase in the current document (its slot, when present, is
/// on a document holding every word).
fn phrase_freq(
    slots: &mut [Slot<'_>],
    at_doc: &[usize],
    group: usize,
    positions: &mut Vec<Vec<u32>>,
    scratch: &mut Vec<u32>,
) -> u32 {
    let Some(&i) = at_doc.iter().find(|&&i| slots[i].group == group) else {
        return 0;
    };
    let SlotCursor::All(cursors, _) = &mut slots[i].cursor else {
        return 0;
    };
    positions.resize_with(cursors.len().max(positions.len()), Vec::new);
    for (k, c) in cursors.iter_mut().enumerate() {
        c.positions(scratch);
        positions[k].clear();
        positions[k].extend_from_slice(scratch);
    }
    count_consecutive(&positions[..cursors.len()])
}

/// Whether a run of consecutive positions (one per list) starts at a position `counts`.
fn any_consecutive(positions: &[Vec<u32>], counts: impl Fn(u32) -> bool) -> bool {
    let Some((first, rest)) = positions.split_first() else {
        return false;
    };
    first.iter().any(|&p| {
        counts(p)
            && rest
                .iter()
                .enumerate()
                .all(|(i, ps)| ps.binary_search(&(p + 1 + i as u32)).is_ok())
    })
}

fn count_consecutive(positions: &[Vec<u32>]) -> u32 {
    let Some((first, rest)) = positions.split_first() else {
        return 0;
    };
    first
        .iter()
        .filter(|&&p| {
            rest.iter()
                .enumerate()
                .all(|(i, ps)| ps.binary_search(&(p + 1 + i as u32)).is_ok())
        })
        .count() as u32
}

fn is_excluded(
    excluded: &mut [Vec<Option<Cursor<'_>>>],
    doc: u32,
    positions: &mut Vec<Vec<u32>>,
    scratch: &mut Vec<u32>,
) -> bool {
    for words in excluded.iter_mut() {
        let mut all_present = true;
        for c in words.iter_mut() {
            let present = c.as_mut().is_some_and(|c| c.seek(doc) == doc);
            if !present {
                all_present = false;
                break;
            }
        }
        if !all_present {
            continue;
        }
        if words.len() == 1 {
            return true;
        }
        positions.resize_with(words.len().max(positions.len()), Vec::new);
        for (i, c) in words.iter_mut().enumerate() {
            if let Some(c) = c {
                c.positions(scratch);
                positions[i].clear();
                positions[i].extend_from_slice(scratch);
            }
        }
        if count_consecutive(&positions[..words.len()]) > 0 {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_positions() {
        let p = vec![vec![1, 5, 9], vec![2, 7, 10], vec![3, 11]];
        assert_eq!(count_consecutive(&p), 2);
        let p = vec![vec![1], vec![3]];
        assert_eq!(count_consecutive(&p), 0);
    }

    #[test]
    fn top_k_keeps_best_and_counts_all() {
        let mut top = TopK::new(2);
        for (i, (bucket, score)) in [(1, 5.0), (2, 1.0), (1, 9.0), (2, 0.5)]
            .into_iter()
            .enumerate()
        {
            top.push(Candidate {
                bucket,
                score,
                seq: i as u64,
                doc: DocRef {
                    layer: 0,
                    doc: i as u32,
                },
            });
        }
        assert_eq!(top.count, 4);
        let got: Vec<u32> = top.into_sorted().iter().map(|c| c.doc.doc).collect();
        assert_eq!(got, vec![1, 3]);
    }

    #[test]
    fn lazy_seq_reads_only_what_may_rank_and_keeps_ties_in_insertion_order() {
        let mut top = TopK::new(2);
        let doc = |doc| DocRef { layer: 0, doc };
        top.push_with_seq(1, 1.0, doc(0), || 30);
        top.push_with_seq(1, 1.0, doc(1), || 20);
        // Same bucket and score, inserted earlier: displaces the one with seq 30.
        top.push_with_seq(1, 1.0, doc(2), || 10);
        top.push_with_seq(1, 0.5, doc(3), || panic!("a lower score needs no seq"));
        top.push_with_seq(0, 9.0, doc(4), || panic!("a lower bucket needs no seq"));
        assert_eq!(top.count, 5);
        let kept: Vec<u64> = top.into_sorted().iter().map(|c| c.seq).collect();
        assert_eq!(kept, vec![10, 20]);
    }
}
