//! Which segments Tantivy merges: its log-structured policy, with every merge bounded in bytes.
//!
//! A merge reads all of its input: the whole document store (stacked block by block),
//! every posting and position list. On memory-mapped segments those pages stay resident in
//! eddy's process until the merge ends and the next view drops the inputs, so the largest
//! merge is the largest burst of memory the engine takes beyond its memtable budget (M1).
//! Tantivy's [`LogMergePolicy`] merges a whole level at once, however big: on a million
//! documents of 1 KB that is one merge of about 400 MB while the memtables are full.
//!
//! [`BoundedMergePolicy`] keeps the log policy's choice of *which* segments are alike, then
//! cuts each of its candidates into merges whose inputs add up to at most
//! `max_merge_bytes`, smallest segments first. A segment that cannot join any other without
//! passing the bound stays as it is — unless it holds enough deleted documents, in which case
//! it is rewritten alone (lowering the deleted-docs ratio). Segments therefore grow to about
//! the bound and no further; a bigger index has more of them.

use std::collections::HashMap;
use std::fmt;

use tantivy::index::{SegmentComponent, SegmentId, SegmentMeta};
use tantivy::indexer::{LogMergePolicy, MergeCandidate, MergePolicy};
use tantivy::{Directory, HasLen};

/// How a segment's size in bytes is found.
pub trait SegmentSizer: Send + Sync + 'static {
    /// Bytes of the segment's files (an estimate is fine; 0 when unknown).
    fn segment_bytes(&self, segment: &SegmentMeta) -> u64;
}

impl<F: Fn(&SegmentMeta) -> u64 + Send + Sync + 'static> SegmentSizer for F {
    fn segment_bytes(&self, segment: &SegmentMeta) -> u64 {
        self(segment)
    }
}

/// Sizes segments by the lengths of their files in a Tantivy directory.
pub struct DirectorySizer(pub Box<dyn Directory>);

impl SegmentSizer for DirectorySizer {
    fn segment_bytes(&self, segment: &SegmentMeta) -> u64 {
        // The components a merge reads; the deletes bitset is small.
        [
            SegmentComponent::Postings,
            SegmentComponent::Positions,
            SegmentComponent::FastFields,
            SegmentComponent::FieldNorms,
            SegmentComponent::Terms,
            SegmentComponent::Store,
        ]
        .into_iter()
        // A file that cannot be opened (a component this schema does not have, or a
        // segment a concurrent garbage collection removed) has no pages to hold.
        .filter_map(|component| self.0.open_read(&segment.relative_path(component)).ok())
        .map(|file| file.len() as u64)
        .sum()
    }
}

/// Tantivy's log merge policy with a bound on the bytes one merge reads.
pub struct BoundedMergePolicy {
    inner: LogMergePolicy,
    max_merge_bytes: u64,
    deleted_ratio: f32,
    sizer: Box<dyn SegmentSizer>,
    /// Called whenever Tantivy reconsiders merges: after every commit and every merge.
    on_change: Box<dyn Fn() + Send + Sync>,
}

impl fmt::Debug for BoundedMergePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedMergePolicy")
            .field("max_merge_bytes", &self.max_merge_bytes)
            .field("deleted_ratio", &self.deleted_ratio)
            .finish()
    }
}

impl BoundedMergePolicy {
    /// Merges of at most `max_merge_bytes` of input; a segment whose share of deleted
    /// documents exceeds `deleted_ratio` is always worth rewriting. `on_change` is called
    /// each time Tantivy asks for merges, which it does after every commit and every merge
    /// (it must not block: it runs on Tantivy's segment-updater thread).
    pub fn new(
        max_merge_bytes: u64,
        deleted_ratio: f32,
        sizer: Box<dyn SegmentSizer>,
        on_change: Box<dyn Fn() + Send + Sync>,
    ) -> BoundedMergePolicy {
        let mut inner = LogMergePolicy::default();
        inner.set_del_docs_ratio_before_merge(deleted_ratio);
        BoundedMergePolicy {
            inner,
            max_merge_bytes,
            deleted_ratio,
            sizer,
            on_change,
        }
    }

    fn too_many_deletes(&self, segment: &SegmentMeta) -> bool {
        segment.max_doc() > 0
            && segment.num_deleted_docs() as f32 / segment.max_doc() as f32 > self.deleted_ratio
    }

    /// A group of two or more segments is a merge; a lone segment only if it has enough
    /// deleted documents to be worth rewriting.
    fn worth_merging(&self, group: &[&SegmentMeta]) -> Option<MergeCandidate> {
        let worth = match group {
            [] => false,
            [one] => self.too_many_deletes(one),
            _ => true,
        };
        worth.then(|| MergeCandidate(group.iter().map(|s| s.id()).collect()))
    }
}

impl MergePolicy for BoundedMergePolicy {
    fn compute_merge_candidates(&self, segments: &[SegmentMeta]) -> Vec<MergeCandidate> {
        (self.on_change)();
        // Looked up on every call, not cached: Tantivy alternates calls for committed and
        // uncommitted segments (often none), and opening a mapped file is cheap.
        let sizes: HashMap<SegmentId, u64> = segments
            .iter()
            .map(|s| (s.id(), self.sizer.segment_bytes(s)))
            .collect();
        let size = |s: &SegmentMeta| sizes.get(&s.id()).copied().unwrap_or(0);
        // Segments already at the bound never join a merge (but for their deletes, below);
        // leaving them out also keeps the log policy from grouping them with smaller ones.
        let mergeable: Vec<SegmentMeta> = segments
            .iter()
            .filter(|s| size(s) < self.max_merge_bytes)
            .cloned()
            .collect();
        let mut merges = Vec::new();
        for candidate in self.inner.compute_merge_candidates(&mergeable) {
            let mut members: Vec<&SegmentMeta> = mergeable
                .iter()
                .filter(|s| candidate.0.contains(&s.id()))
                .collect();
            members.sort_by_key(|s| size(s));
            let mut group: Vec<&SegmentMeta> = Vec::new();
            let mut group_bytes = 0;
            for segment in members {
                let bytes = size(segment);
                if !group.is_empty() && group_bytes + bytes > self.max_merge_bytes {
                    merges.extend(self.worth_merging(&group));
                    group.clear();
                    group_bytes = 0;
                }
                group.push(segment);
                group_bytes += bytes;
            }
            merges.extend(self.worth_merging(&group));
        }
        for segment in segments {
            if size(segment) >= self.max_merge_bytes && self.too_many_deletes(segment) {
                merges.push(MergeCandidate(vec![segment.id()]));
            }
        }
        merges
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tantivy::Index;
    use tantivy::schema::{INDEXED, Schema};

    use super::*;

    /// A kilobyte per document.
    const DOC: u64 = 1024;

    fn policy(max_merge_bytes: u64) -> BoundedMergePolicy {
        BoundedMergePolicy::new(
            max_merge_bytes,
            0.3,
            Box::new(|s: &SegmentMeta| u64::from(s.max_doc()) * DOC),
            Box::new(|| {}),
        )
    }

    fn segments(docs: &[u32]) -> Vec<SegmentMeta> {
        let mut schema = Schema::builder();
        schema.add_u64_field("x", INDEXED);
        let index = Index::create_in_ram(schema.build());
        docs.iter()
            .map(|&n| index.new_segment_meta(SegmentId::generate_random(), n))
            .collect()
    }

    /// Each merge's members, as document counts in the order given.
    fn merges(policy: &BoundedMergePolicy, segs: &[SegmentMeta]) -> Vec<Vec<u32>> {
        let mut out: Vec<Vec<u32>> = policy
            .compute_merge_candidates(segs)
            .into_iter()
            .map(|c| {
                let mut docs: Vec<u32> =
                    c.0.iter()
                        .map(|id| {
                            segs.iter()
                                .find(|s| s.id() == *id)
                                .expect("known")
                                .max_doc()
                        })
                        .collect();
                docs.sort_unstable();
                docs
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_level_under_the_bound_is_merged_whole_like_the_log_policy() {
        let segs = segments(&[10_000; 8]);
        assert_eq!(merges(&policy(1 << 30), &segs), vec![vec![10_000; 8]]);
        // Seven alike are not enough yet.
        assert!(merges(&policy(1 << 30), &segments(&[10_000; 7])).is_empty());
    }

    #[test]
    fn a_level_over_the_bound_is_cut_into_merges_within_it() {
        // Ten segments of 10 MB alike; at most 32 MB per merge: three merges of three, and
        // the tenth waits (a merge of one is no merge).
        let segs = segments(&[10_240; 10]);
        let bound = 32 << 20;
        let found = merges(&policy(bound), &segs);
        assert_eq!(found, vec![vec![10_240; 3]; 3]);
        for merge in &found {
            let bytes: u64 = merge.iter().map(|&d| u64::from(d) * DOC).sum();
            assert!(bytes <= bound, "{bytes} > {bound}");
        }
    }

    #[test]
    fn segments_at_the_bound_stay_unless_they_hold_many_deletes() {
        let bound = 64 << 20;
        let at_bound = (bound / DOC) as u32;
        let mut segs = segments(&[at_bound; 9]);
        assert!(merges(&policy(bound), &segs).is_empty());
        // Deletes above the ratio: rewritten alone, whatever its size.
        let big = segs[0].clone().with_delete_meta(at_bound / 2, 1);
        segs[0] = big;
        assert_eq!(merges(&policy(bound), &segs), vec![vec![at_bound]]);
        // Under the ratio: still left alone.
        segs[0] = segs[0].clone().with_delete_meta(at_bound / 10, 2);
        assert!(merges(&policy(bound), &segs).is_empty());
    }

    #[test]
    fn a_small_segment_with_many_deletes_is_rewritten_even_alone() {
        let segs = vec![segments(&[5_000])[0].clone().with_delete_meta(4_000, 1)];
        assert_eq!(merges(&policy(1 << 30), &segs), vec![vec![5_000]]);
    }

    #[test]
    fn every_call_is_reported() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let policy = BoundedMergePolicy::new(
            1 << 30,
            0.3,
            Box::new(|s: &SegmentMeta| u64::from(s.max_doc())),
            Box::new(move || {
                seen.fetch_add(1, Ordering::SeqCst);
            }),
        );
        policy.compute_merge_candidates(&segments(&[1, 2]));
        policy.compute_merge_candidates(&[]);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
