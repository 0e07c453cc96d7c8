//! The two evaluators agree: plain-word queries are evaluated term at a time in windows of
//! documents, every other plan document at a time through a heap of cursors. Restricting
//! matching to every searchable attribute changes nothing in the results but takes the
//! second path, so the two answers must be the same, hit for hit and score for score, over
//! layers large enough to span many windows, with replaced and deleted documents.

#![allow(clippy::unwrap_used)]

use eddy_engine::{
    Engine, EngineConfig, MatchingStrategy, MergeStrategy, Method, PayloadFormat, SearchRequest,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const VOCAB: [&str; 30] = [
    "river", "stone", "night", "garden", "storm", "the", "of", "light", "stormy", "winter", "star",
    "forest", "stars", "mountain", "start", "castle", "story", "legend", "stones", "thunder",
    "there", "crystal", "falcon", "lantern", "these", "nights", "starling", "rivers", "lights",
    "gardens",
];

/// A word, frequent words far more often (about Zipf).
fn word(rng: &mut StdRng) -> &'static str {
    let r: f64 = rng.random();
    VOCAB[((r * r * r) * VOCAB.len() as f64) as usize]
}

fn text(rng: &mut StdRng, words: std::ops::Range<usize>) -> String {
    let n = rng.random_range(words);
    (0..n).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
}

fn docs(rng: &mut StdRng, ids: impl Iterator<Item = u32>) -> String {
    ids.map(|id| json!({"id": id, "title": text(rng, 1..5), "body": text(rng, 3..14)}).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn write(engine: &Engine, body: &str) {
    engine
        .add_documents(
            "idx",
            body.as_bytes(),
            PayloadFormat::Ndjson,
            Method::Replace,
            Some("id".into()),
        )
        .unwrap();
}

/// A query word: as is, with a typo, or cut to a prefix.
fn query_word(rng: &mut StdRng) -> String {
    let w = word(rng).to_string();
    match rng.random_range(0..6) {
        0 if w.len() >= 5 => {
            let mut b = w.into_bytes();
            let i = rng.random_range(1..b.len());
            b[i] = b'x';
            String::from_utf8(b).unwrap()
        }
        1 if w.len() >= 4 => w[..3].to_string(),
        _ => w,
    }
}

fn query(rng: &mut StdRng) -> String {
    let n = rng.random_range(1..5);
    let mut words: Vec<String> = (0..n).map(|_| query_word(rng)).collect();
    if rng.random_range(0..5) == 0 {
        words.push(format!("-{}", word(rng)));
    }
    words.join(" ")
}

type Hits = (Vec<(String, u32, u32)>, u64);

fn answer(engine: &Engine, request: &SearchRequest) -> Hits {
    let res = engine.search("idx", request).unwrap();
    let hits = res
        .hits
        .iter()
        .map(|h| (h.id.clone(), h.matching_words, h.score.to_bits()))
        .collect();
    (hits, res.total)
}

#[test]
fn windowed_and_heap_evaluation_agree_across_windows_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        ..EngineConfig::default()
    };
    let engine = Engine::open(dir.path().join("db"), config).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    // A segment of 10,000 documents (three windows), then a memtable that replaces a
    // tenth of them, deletes some and adds 3,000 more.
    write(&engine, &docs(&mut rng, 0..10_000));
    engine.flush().unwrap();
    write(&engine, &docs(&mut rng, (0..10_000).step_by(10)));
    let deleted: Vec<_> = (5..10_000).step_by(37).map(|i| json!(i)).collect();
    engine.delete_documents("idx", deleted).unwrap();
    write(&engine, &docs(&mut rng, 10_000..13_000));

    let mut compared = 0;
    for _ in 0..60 {
        let q = query(&mut rng);
        for strategy in [MatchingStrategy::Last, MatchingStrategy::All] {
            let plain = SearchRequest {
                q: Some(q.clone()),
                limit: 40,
                strategy,
                ..SearchRequest::default()
            };
            let restricted = SearchRequest {
                attributes_to_search_on: Some(vec!["title".into(), "body".into()]),
                ..plain.clone()
            };
            let (a, b) = (answer(&engine, &plain), answer(&engine, &restricted));
            assert_eq!(a, b, "query {q:?} ({strategy:?})");
            compared += usize::from(a.1 > 0);
        }
    }
    assert!(
        compared > 60,
        "too few queries matched anything: {compared}"
    );
}
