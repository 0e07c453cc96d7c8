//! Relevance metrics computed the way trec_eval and BEIR (pytrec_eval) compute them.
//!
//! - nDCG@k: `DCG = Σ gain(d_i) / log2(i + 1)` over ranks `i = 1..=k` of the run, with the
//!   graded judgement as the gain (linear, not `2^g - 1`); the ideal DCG sorts every judged
//!   document of the query by gain. Queries without a relevant document are skipped.
//! - Recall@k: relevant documents (gain > 0) in the top `k`, over all relevant documents.
//! - MRR@k: `1 / rank` of the first relevant document in the top `k`, 0 when none.
//!
//! Each is averaged over the queries that have at least one relevant document.

use std::collections::HashMap;

/// Graded judgements of one query: document id → gain (> 0 means relevant).
pub type Judgements = HashMap<String, f64>;

fn relevant(j: &Judgements, id: &str) -> f64 {
    j.get(id).copied().filter(|g| *g > 0.0).unwrap_or(0.0)
}

/// nDCG@k of one ranked list.
pub fn ndcg_at(ranked: &[String], judged: &Judgements, k: usize) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| relevant(judged, id) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<f64> = judged.values().copied().filter(|g| *g > 0.0).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| g / (i as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Recall@k of one ranked list.
pub fn recall_at(ranked: &[String], judged: &Judgements, k: usize) -> f64 {
    let total = judged.values().filter(|g| **g > 0.0).count();
    if total == 0 {
        return 0.0;
    }
    let found = ranked
        .iter()
        .take(k)
        .filter(|id| relevant(judged, id) > 0.0)
        .count();
    found as f64 / total as f64
}

/// Reciprocal rank of the first relevant document within the top `k`.
pub fn mrr_at(ranked: &[String], judged: &Judgements, k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|id| relevant(judged, id) > 0.0)
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Mean metrics over a set of queries.
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    /// Queries evaluated.
    pub queries: usize,
    /// Mean nDCG@10.
    pub ndcg10: f64,
    /// Mean Recall@100.
    pub recall100: f64,
    /// Mean MRR@10.
    pub mrr10: f64,
}

/// Averages the metrics of `(ranked list, judgements)` pairs, skipping queries without a
/// relevant document.
pub fn summarize<'a>(runs: impl IntoIterator<Item = (&'a [String], &'a Judgements)>) -> Summary {
    let mut s = Summary::default();
    for (ranked, judged) in runs {
        if !judged.values().any(|g| *g > 0.0) {
            continue;
        }
        s.queries += 1;
        s.ndcg10 += ndcg_at(ranked, judged, 10);
        s.recall100 += recall_at(ranked, judged, 100);
        s.mrr10 += mrr_at(ranked, judged, 10);
    }
    if s.queries > 0 {
        let n = s.queries as f64;
        s.ndcg10 /= n;
        s.recall100 /= n;
        s.mrr10 /= n;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    fn judged(v: &[(&str, f64)]) -> Judgements {
        v.iter().map(|(k, g)| ((*k).to_string(), *g)).collect()
    }

    #[test]
    fn ndcg_matches_a_hand_computed_example() {
        // Judged: a = 3, b = 2, c = 1, z = 0 (judged, not relevant). Run: b, x, a, z, c.
        // DCG  = 2/log2(2) + 0 + 3/log2(4) + 0 + 1/log2(6) = 2 + 1.5 + 0.386853 = 3.886853
        // IDCG = 3/log2(2) + 2/log2(3) + 1/log2(4)         = 3 + 1.261860 + 0.5 = 4.761860
        let j = judged(&[("a", 3.0), ("b", 2.0), ("c", 1.0), ("z", 0.0)]);
        let run = ids(&["b", "x", "a", "z", "c"]);
        let got = ndcg_at(&run, &j, 10);
        assert!((got - 3.886_853 / 4.761_860).abs() < 1e-6, "{got}");
        // Cut at 2: DCG = 2; IDCG = 3 + 1.261860.
        let got = ndcg_at(&run, &j, 2);
        assert!((got - 2.0 / 4.261_860).abs() < 1e-6, "{got}");
        // The ideal order scores 1; a run without relevant documents scores 0.
        assert!((ndcg_at(&ids(&["a", "b", "c"]), &j, 10) - 1.0).abs() < 1e-12);
        assert_eq!(ndcg_at(&ids(&["x", "z"]), &j, 10), 0.0);
    }

    #[test]
    fn recall_and_mrr() {
        let j = judged(&[("a", 1.0), ("b", 1.0), ("z", 0.0)]);
        let run = ids(&["x", "z", "b"]);
        assert_eq!(recall_at(&run, &j, 100), 0.5);
        assert_eq!(recall_at(&run, &j, 2), 0.0);
        assert!((mrr_at(&run, &j, 10) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(mrr_at(&run, &j, 2), 0.0);
    }

    #[test]
    fn summary_skips_queries_without_relevant_documents() {
        let j1 = judged(&[("a", 1.0)]);
        let j2 = judged(&[("z", 0.0)]);
        let r1 = ids(&["a"]);
        let r2 = ids(&["z"]);
        let s = summarize([(r1.as_slice(), &j1), (r2.as_slice(), &j2)]);
        assert_eq!(s.queries, 1);
        assert_eq!(s.ndcg10, 1.0);
        assert_eq!(s.mrr10, 1.0);
    }
}
