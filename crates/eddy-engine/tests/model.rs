//! Model test: random sequences of writes, searches, freezes, flushes, clean reopens and
//! crashes, checked at every search against a brute-force reference that knows nothing of
//! memtables, segments or logs.
//!
//! The reference keeps the live documents in a map and computes everything a search
//! returns from them alone: derivations over the live vocabulary, BM25 over live documents,
//! buckets, exclusions, insertion order. The engine must give the same ids in the same order
//! (ties aside) with scores within 1e-4, whichever layer holds each document (R1, R2, C1).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use eddy_engine::analysis::analyze_document;
use eddy_engine::bm25::{CorpusStats, TermWeight, idf};
use eddy_engine::index::seq_of;
use eddy_engine::search::derive::{self, WordDfa};
use eddy_engine::search::query::QueryTerm;
use eddy_engine::search::{self, MatchingStrategy, SearchRequest};
use eddy_engine::{
    Document, Engine, EngineConfig, MergeStrategy, Method, PayloadFormat, Settings, TaskStatus,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const VOCAB: &[&str] = &[
    "hello",
    "hallo",
    "help",
    "helm",
    "world",
    "word",
    "words",
    "wordy",
    "search",
    "seared",
    "engine",
    "engines",
    "engage",
    "quick",
    "quack",
    "brown",
    "browse",
    "fox",
    "foxes",
    "lazy",
    "dog",
    "dogma",
    "apple",
    "apply",
    "ample",
    "zebra",
    "observatory",
    "observation",
    "conservatory",
    "café",
];

#[derive(Debug, Clone)]
struct DocSpec {
    id: u8,
    title: Vec<usize>,
    body: Option<Vec<usize>>,
    tags: Option<Vec<usize>>,
    nested: Option<usize>,
    n: Option<i64>,
}

impl DocSpec {
    fn to_json(&self) -> Value {
        let words = |ws: &[usize]| ws.iter().map(|w| VOCAB[*w]).collect::<Vec<_>>().join(" ");
        let mut doc = serde_json::Map::new();
        doc.insert("id".into(), json!(self.id));
        doc.insert("title".into(), json!(words(&self.title)));
        if let Some(b) = &self.body {
            doc.insert("body".into(), json!(words(b)));
        }
        if let Some(t) = &self.tags {
            doc.insert(
                "tags".into(),
                Value::Array(t.iter().map(|w| json!(VOCAB[*w])).collect()),
            );
        }
        if let Some(n) = self.nested {
            doc.insert("meta".into(), json!({"note": VOCAB[n]}));
        }
        if let Some(n) = self.n {
            doc.insert("n".into(), json!(n));
        }
        Value::Object(doc)
    }
}

#[derive(Debug, Clone)]
enum QuerySpec {
    Words {
        words: Vec<String>,
        trailing_space: bool,
    },
    Phrase(Vec<usize>, Option<usize>),
    Placeholder,
}

impl QuerySpec {
    fn text(&self) -> String {
        match self {
            QuerySpec::Words {
                words,
                trailing_space,
            } => {
                let mut q = words.join(" ");
                if *trailing_space {
                    q.push(' ');
                }
                q
            }
            QuerySpec::Phrase(p, rest) => {
                let mut q = format!(
                    "\"{}\"",
                    p.iter().map(|w| VOCAB[*w]).collect::<Vec<_>>().join(" ")
                );
                if let Some(r) = rest {
                    q.push(' ');
                    q.push_str(VOCAB[*r]);
                }
                q
            }
            QuerySpec::Placeholder => String::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Add(Vec<DocSpec>, bool),
    AddWithoutId,
    Delete(Vec<u8>),
    Clear,
    Search(QuerySpec, u8),
    Freeze,
    Flush,
    Reopen,
    Crash,
}

fn word_query() -> impl Strategy<Value = QuerySpec> {
    let word = (0..VOCAB.len(), 0u8..6).prop_map(|(w, m)| {
        let base = VOCAB[w].to_string();
        match m {
            // A typo: replace an inner character.
            0 if base.len() > 4 => {
                let mut chars: Vec<char> = base.chars().collect();
                let i = chars.len() / 2;
                chars[i] = 'x';
                chars.into_iter().collect()
            }
            // A prefix.
            1 => base.chars().take(3).collect(),
            // An exclusion.
            2 => format!("-{base}"),
            _ => base,
        }
    });
    (prop::collection::vec(word, 1..4), any::<bool>()).prop_map(|(words, trailing_space)| {
        QuerySpec::Words {
            words,
            trailing_space,
        }
    })
}

fn query() -> impl Strategy<Value = QuerySpec> {
    prop_oneof![
        6 => word_query(),
        2 => (prop::collection::vec(0..VOCAB.len(), 2..3), prop::option::of(0..VOCAB.len()))
            .prop_map(|(p, r)| QuerySpec::Phrase(p, r)),
        1 => Just(QuerySpec::Placeholder),
    ]
}

fn doc_spec() -> impl Strategy<Value = DocSpec> {
    let words = |n| prop::collection::vec(0..VOCAB.len(), n);
    (
        0u8..24,
        words(1..4),
        prop::option::of(words(0..8)),
        prop::option::of(words(0..3)),
        prop::option::of(0..VOCAB.len()),
        prop::option::of(-5i64..50),
    )
        .prop_map(|(id, title, body, tags, nested, n)| DocSpec {
            id,
            title,
            body,
            tags,
            nested,
            n,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (prop::collection::vec(doc_spec(), 1..6), any::<bool>()).prop_map(|(d, u)| Step::Add(d, u)),
        1 => Just(Step::AddWithoutId),
        2 => prop::collection::vec(0u8..24, 1..4).prop_map(Step::Delete),
        1 => Just(Step::Clear),
        8 => (query(), 0u8..3).prop_map(|(q, s)| Step::Search(q, s)),
        2 => Just(Step::Freeze),
        2 => Just(Step::Flush),
        1 => Just(Step::Reopen),
        1 => Just(Step::Crash),
    ]
}

/// The reference: live documents and the field order, nothing else.
#[derive(Default)]
struct Reference {
    docs: BTreeMap<String, (u64, Document)>,
    fields: Vec<String>,
}

struct RefDoc {
    id: String,
    seq: u64,
    len: u32,
    terms: HashMap<String, Vec<u32>>,
}

impl Reference {
    fn field_id(&mut self, path: &str) -> u32 {
        match self.fields.iter().position(|f| f == path) {
            Some(i) => i as u32,
            None => {
                self.fields.push(path.to_string());
                (self.fields.len() - 1) as u32
            }
        }
    }

    fn apply_add(&mut self, lsn: u64, docs: &[Value], update: bool) {
        for (i, doc) in docs.iter().enumerate() {
            let Value::Object(mut doc) = doc.clone() else {
                unreachable!()
            };
            let id = match &doc["id"] {
                Value::Number(n) => n.to_string(),
                other => other.as_str().unwrap().to_string(),
            };
            let seq = match self.docs.get(&id) {
                Some((seq, old)) => {
                    if update {
                        let mut merged = old.clone();
                        for (k, v) in doc {
                            merged.insert(k, v);
                        }
                        doc = merged;
                    }
                    *seq
                }
                None => seq_of(lsn, i),
            };
            // Field ids are assigned in the order documents are analyzed.
            let mut fields = std::mem::take(&mut self.fields);
            analyze_document(&doc, |p| {
                Some(match fields.iter().position(|f| f == p) {
                    Some(i) => i as u32,
                    None => {
                        fields.push(p.to_string());
                        (fields.len() - 1) as u32
                    }
                })
            });
            self.fields = fields;
            self.docs.insert(id, (seq, doc));
        }
    }

    fn analyzed(&mut self) -> Vec<RefDoc> {
        let docs: Vec<(String, u64, Document)> = self
            .docs
            .iter()
            .map(|(id, (seq, d))| (id.clone(), *seq, d.clone()))
            .collect();
        docs.into_iter()
            .map(|(id, seq, doc)| {
                let a = analyze_document(&doc, |p| Some(self.field_id(p)));
                let mut terms: HashMap<String, Vec<u32>> = HashMap::new();
                for t in &a.tokens {
                    terms.entry(t.term.clone()).or_default().push(t.position);
                }
                RefDoc {
                    id,
                    seq,
                    len: a.len(),
                    terms,
                }
            })
            .collect()
    }

    /// Brute-force search: (id, bucket, score) best first, and the total.
    fn search(&mut self, request: &SearchRequest) -> (Vec<(String, u32, f32)>, u64) {
        let settings = Settings::default();
        let parsed = search::parse(request, &settings);
        let docs = self.analyzed();
        if parsed.is_placeholder() {
            let mut all: Vec<&RefDoc> = docs.iter().collect();
            all.sort_by_key(|d| d.seq);
            let total = all.len() as u64;
            return (
                all.iter()
                    .map(|d| (d.id.clone(), 0, 0.0))
                    .take(request.limit)
                    .collect(),
                total,
            );
        }
        let corpus = CorpusStats {
            docs: docs.len() as u64,
            tokens: docs.iter().map(|d| u64::from(d.len)).sum(),
        };
        let df = |t: &str| docs.iter().filter(|d| d.terms.contains_key(t)).count() as u64;
        let mut vocab: Vec<&String> = docs.iter().flat_map(|d| d.terms.keys()).collect();
        vocab.sort();
        vocab.dedup();
        enum G {
            Word(Vec<(String, u8, TermWeight)>),
            Phrase(Vec<String>, TermWeight),
        }
        let groups: Vec<G> = parsed
            .terms
            .iter()
            .map(|t| match t {
                QueryTerm::Word(w) => {
                    let dfa = WordDfa::new(w);
                    let mut union = BTreeMap::new();
                    if w.max_typos == 0 && !w.prefix {
                        derive::add(&mut union, w.text.as_bytes(), 0);
                    } else {
                        for term in &vocab {
                            if let Some(t) = dfa.typos(term.as_bytes()) {
                                derive::add(&mut union, term.as_bytes(), t);
                            }
                        }
                    }
                    let selected = derive::select(union, |t| df(t) > 0);
                    G::Word(
                        selected
                            .into_iter()
                            .filter(|d| df(&d.term) > 0)
                            .map(|d| {
                                let w = TermWeight::new(
                                    idf(df(&d.term), corpus.docs),
                                    corpus,
                                    request.bm25,
                                );
                                (d.term, d.typos, w)
                            })
                            .collect(),
                    )
                }
                QueryTerm::Phrase(words) => {
                    let idf_sum = words.iter().map(|w| idf(df(w), corpus.docs)).sum();
                    G::Phrase(
                        words.clone(),
                        TermWeight::new(idf_sum, corpus, request.bm25),
                    )
                }
            })
            .collect();
        let phrase_freq = |d: &RefDoc, words: &[String]| -> u32 {
            let Some(first) = d.terms.get(&words[0]) else {
                return 0;
            };
            first
                .iter()
                .filter(|p| {
                    words[1..].iter().enumerate().all(|(i, w)| {
                        d.terms
                            .get(w)
                            .is_some_and(|ps| ps.contains(&(**p + 1 + i as u32)))
                    })
                })
                .count() as u32
        };
        let mut hits = Vec::new();
        for d in &docs {
            let fieldnorm_id = tantivy::fieldnorm::FieldNormReader::fieldnorm_to_id(d.len);
            let mut mask = 0u64;
            let mut best = vec![0f32; groups.len()];
            for (g, group) in groups.iter().enumerate() {
                match group {
                    G::Word(ds) => {
                        for (term, typos, w) in ds {
                            if let Some(ps) = d.terms.get(term) {
                                let s = w.score(fieldnorm_id, ps.len() as u32)
                                    / (1.0 + f32::from(*typos));
                                mask |= 1 << g;
                                if s > best[g] {
                                    best[g] = s;
                                }
                            }
                        }
                    }
                    G::Phrase(words, w) => {
                        let f = phrase_freq(d, words);
                        if f > 0 {
                            mask |= 1 << g;
                            best[g] = w.score(fieldnorm_id, f);
                        }
                    }
                }
            }
            let n = groups.len();
            let bucket = match request.strategy {
                MatchingStrategy::Last => mask.trailing_ones(),
                MatchingStrategy::All => {
                    if mask.count_ones() as usize == n {
                        n as u32
                    } else {
                        0
                    }
                }
                MatchingStrategy::Any => u32::from(mask != 0),
            };
            let excluded = parsed.excluded.iter().any(|words| {
                if words.len() == 1 {
                    d.terms.contains_key(&words[0])
                } else {
                    phrase_freq(d, words) > 0
                }
            });
            if bucket > 0 && !excluded {
                hits.push((d.id.clone(), bucket, best.iter().sum::<f32>(), d.seq));
            }
        }
        hits.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| b.2.total_cmp(&a.2))
                .then_with(|| a.3.cmp(&b.3))
        });
        let total = hits.len() as u64;
        (
            hits.into_iter()
                .take(request.limit)
                .map(|(id, b, s, _)| (id, b, s))
                .collect(),
            total,
        )
    }
}

fn config(write_buffer: usize) -> EngineConfig {
    let mut c = EngineConfig {
        merge_strategy: MergeStrategy::Manual,
        write_buffer_bytes: write_buffer,
        // Seal memtable dictionaries into FSTs after a few new terms, so derivations run
        // over sealed and recent terms alike.
        seal_min_terms: 3,
        ..EngineConfig::default()
    };
    c.segments.writer_memory_bytes = 15_000_000;
    c
}

fn check_search(engine: &Engine, reference: &mut Reference, q: &QuerySpec, strategy: u8) {
    let request = SearchRequest {
        q: Some(q.text()),
        offset: 0,
        limit: 1000,
        strategy: match strategy {
            0 => MatchingStrategy::Last,
            1 => MatchingStrategy::All,
            _ => MatchingStrategy::Any,
        },
        ..SearchRequest::default()
    };
    let (expected, expected_total) = reference.search(&request);
    let got = match engine.search("idx", &request) {
        Ok(r) => r,
        Err(eddy_engine::Error::IndexNotFound(_)) => {
            assert!(expected.is_empty(), "index missing but reference has hits");
            return;
        }
        Err(e) => panic!("search failed: {e}"),
    };
    assert_eq!(
        got.total,
        expected_total,
        "total for {:?}: got {:?} expected {:?}",
        q.text(),
        got.hits.iter().map(|h| &h.id).collect::<Vec<_>>(),
        expected
    );
    assert_eq!(got.hits.len(), expected.len());
    for (i, (hit, (id, _bucket, score))) in got.hits.iter().zip(&expected).enumerate() {
        let same_score = (hit.score - score).abs() <= 1e-4 * score.abs().max(1.0);
        assert!(
            same_score,
            "query {:?} rank {i}: score {} (id {}) vs reference {} (id {id})\n got {:?}\n want {:?}",
            q.text(),
            hit.score,
            hit.id,
            score,
            got.hits
                .iter()
                .map(|h| (&h.id, h.score))
                .collect::<Vec<_>>(),
            expected
        );
        if &hit.id != id {
            // Only allowed among (near-)ties.
            let tied = expected
                .iter()
                .filter(|(_, _, s)| (s - score).abs() <= 1e-4 * score.abs().max(1.0))
                .any(|(eid, _, _)| eid == &hit.id);
            assert!(tied, "query {:?} rank {i}: {} vs {id}", q.text(), hit.id);
        }
    }
}

fn run(steps: Vec<Step>, write_buffer: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Some(Engine::open(dir.path(), config(write_buffer)).unwrap());
    let mut reference = Reference::default();
    for step in steps {
        let e = engine.as_ref().unwrap();
        match step {
            Step::Add(docs, update) => {
                let values: Vec<Value> = docs.iter().map(DocSpec::to_json).collect();
                let payload = serde_json::to_vec(&values).unwrap();
                let method = if update {
                    Method::Update
                } else {
                    Method::Replace
                };
                let task = e
                    .add_documents("idx", &payload, PayloadFormat::Json, method, None)
                    .unwrap();
                assert_eq!(task.status, TaskStatus::Succeeded, "{task:?}");
                reference.apply_add(task.uid + 1, &values, update);
            }
            Step::AddWithoutId => {
                let task = e
                    .add_documents(
                        "idx",
                        br#"[{"id": 1, "title": "hello"}, {"title": "world"}]"#,
                        PayloadFormat::Json,
                        Method::Replace,
                        None,
                    )
                    .unwrap();
                // The first write infers the primary key from the first document, so this
                // batch fails either on the missing id or never indexes anything.
                assert_eq!(task.status, TaskStatus::Failed, "{task:?}");
            }
            Step::Delete(ids) => {
                let task = e
                    .delete_documents("idx", ids.iter().map(|i| json!(i)).collect())
                    .unwrap();
                if task.status == TaskStatus::Succeeded {
                    for i in ids {
                        reference.docs.remove(&i.to_string());
                    }
                }
            }
            Step::Clear => {
                let task = e.clear_documents("idx").unwrap();
                if task.status == TaskStatus::Succeeded {
                    reference.docs.clear();
                }
            }
            Step::Search(q, s) => check_search(e, &mut reference, &q, s),
            Step::Freeze => e.freeze_all(),
            Step::Flush => e.flush().unwrap(),
            Step::Reopen => {
                engine.take().unwrap().close().unwrap();
                engine = Some(Engine::open(dir.path(), config(write_buffer)).unwrap());
            }
            Step::Crash => {
                drop(engine.take());
                engine = Some(Engine::open(dir.path(), config(write_buffer)).unwrap());
            }
        }
    }
    // A final full comparison.
    let e = engine.as_ref().unwrap();
    check_search(e, &mut reference, &QuerySpec::Placeholder, 0);
    if let Ok(stats) = e.index_stats("idx", false) {
        assert_eq!(stats.number_of_documents, reference.docs.len() as u64);
    }
    for (id, (_, doc)) in &reference.docs {
        assert_eq!(&e.document("idx", id, None).unwrap(), doc);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        max_shrink_iters: 400,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_reference(steps in prop::collection::vec(step(), 1..60), buffer in prop_oneof![Just(800usize), Just(4000), Just(1 << 20)]) {
        run(steps, buffer);
    }
}
