//! Benchmark corpora, read from `../shared/data` (never downloaded).
//!
//! - `wordnet`: WordNet 3.1 synsets (117,791 short documents).
//! - `scifact`: SciFact abstracts (5,183).
//! - `synthetic`: 1,000,000 documents of about 1 KB, generated deterministically from the
//!   word frequencies of `wordfreq/small_en.tsv` (Zipf-distributed words). Documents are
//!   generated on demand, so a run never holds the whole corpus in memory.
//!
//! `EDDY_BENCH_DOCS=n` keeps the first `n` documents of any corpus (for a quick run).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

/// Root of the shared data sets.
pub fn data_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.join("../../../shared/data")
}

/// A corpus: a fixed number of documents, each produced by index.
pub enum Corpus {
    /// Documents held in memory.
    Loaded {
        /// Documents.
        docs: Vec<Map<String, Value>>,
        /// Primary key.
        primary_key: &'static str,
    },
    /// Generated documents.
    Synthetic(Synthetic),
}

impl Corpus {
    /// Opens a corpus by name.
    pub fn open(name: &str) -> Result<Corpus> {
        let mut corpus = Corpus::open_all(name)?;
        let limit = std::env::var("EDDY_BENCH_DOCS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok());
        if let Some(limit) = limit {
            match &mut corpus {
                Corpus::Loaded { docs, .. } => docs.truncate(limit),
                Corpus::Synthetic(s) => s.docs = s.docs.min(limit),
            }
        }
        Ok(corpus)
    }

    fn open_all(name: &str) -> Result<Corpus> {
        match name {
            "wordnet" => Ok(Corpus::Loaded {
                docs: read_ndjson_gz(&data_dir().join("wordnet/wordnet31_synsets.ndjson.gz"))?,
                primary_key: "id",
            }),
            "scifact" => Ok(Corpus::Loaded {
                docs: read_ndjson_gz(&data_dir().join("scifact/corpus.jsonl.gz"))?,
                primary_key: "_id",
            }),
            "synthetic" => Ok(Corpus::Synthetic(Synthetic::new(1_000_000)?)),
            other => bail!("unknown corpus `{other}` (wordnet, scifact, synthetic)"),
        }
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        match self {
            Corpus::Loaded { docs, .. } => docs.len(),
            Corpus::Synthetic(s) => s.docs,
        }
    }

    /// Primary key attribute.
    pub fn primary_key(&self) -> &'static str {
        match self {
            Corpus::Loaded { primary_key, .. } => primary_key,
            Corpus::Synthetic(_) => "id",
        }
    }

    /// Document `i`.
    pub fn doc(&self, i: usize) -> Map<String, Value> {
        match self {
            Corpus::Loaded { docs, .. } => docs[i].clone(),
            Corpus::Synthetic(s) => s.doc(i),
        }
    }

    /// The id of document `i`, as the engine stores it.
    pub fn id(&self, i: usize) -> String {
        if let Corpus::Synthetic(_) = self {
            // Without generating the document again (the baseline asks for every id).
            return i.to_string();
        }
        match self.doc(i).get(self.primary_key()) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }
}

fn read_ndjson_gz(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut docs = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line)? {
            Value::Object(m) => docs.push(m),
            _ => bail!("{}: a line is not an object", path.display()),
        }
    }
    Ok(docs)
}

/// SplitMix64: small, fast, deterministic across platforms and crate versions.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf-distributed text from real English word frequencies.
pub struct Synthetic {
    docs: usize,
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Synthetic {
    /// A generator of `docs` documents.
    pub fn new(docs: usize) -> Result<Synthetic> {
        let path = data_dir().join("wordfreq/small_en.tsv");
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        let mut words = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for line in text.lines().skip(1) {
            let mut cols = line.split('\t');
            let (Some(word), Some(freq)) = (cols.next(), cols.next()) else {
                continue;
            };
            let Ok(freq) = freq.parse::<f64>() else {
                continue;
            };
            total += freq;
            words.push(word.to_string());
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Ok(Synthetic {
            docs,
            words,
            cumulative,
        })
    }

    fn word(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let i = self.cumulative.partition_point(|c| *c < u);
        &self.words[i.min(self.words.len() - 1)]
    }

    fn text(&self, rng: &mut Rng, n: usize) -> String {
        let mut s = String::with_capacity(n * 7);
        for k in 0..n {
            if k > 0 {
                s.push(' ');
            }
            s.push_str(self.word(rng));
        }
        s
    }

    /// Document `i`: about 1 KB of text in a title and a body.
    pub fn doc(&self, i: usize) -> Map<String, Value> {
        let mut rng = Rng::new(0xEDD1 ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let title = self.text(&mut rng, 6);
        let body = self.text(&mut rng, 150);
        match json!({"id": i, "title": title, "body": body}) {
            Value::Object(m) => m,
            _ => unreachable!("a json object"),
        }
    }
}

/// Benchmark queries (`queries/search-benchmark-game.jsonl`).
pub fn queries() -> Result<Vec<String>> {
    let path = data_dir().join("queries/search-benchmark-game.jsonl");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)?;
        if let Some(q) = v["query"].as_str() {
            out.push(q.to_string());
        }
    }
    Ok(out)
}

/// Text of a document for the baseline: every string and number leaf.
pub fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
        Value::Object(m) => m.values().for_each(|v| leaves(v, out)),
        Value::Null => {}
    }
}
