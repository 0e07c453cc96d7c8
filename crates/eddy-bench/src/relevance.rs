//! `eddy-bench relevance`: ranking quality of the real server on two judged collections.
//!
//! Starts `eddy` on loopback, loads each collection through the HTTP API, runs its queries
//! (`limit` 100, `attributesToRetrieve` the primary key) and scores the ranked ids with
//! [`crate::metrics`] (nDCG@10, Recall@100, MRR@10, trec_eval's definitions).
//!
//! - SciFact (BEIR): 5,183 abstracts (`title`, `text`), claims as queries, binary qrels. The
//!   figures are on the 300 test queries (`qrels-test.tsv`); `--split train` reports the 809
//!   train queries instead, the only ones to tune on.
//! - Cranfield: 1,400 abstracts (`title` = `.T`, `text` = `.W`), 225 queries. Grades are 1
//!   (complete answer) to 4 (minimum interest), -1 for none; the gain is `5 - grade` (4..1),
//!   0 for -1.
//!
//! Each collection is searched twice, in two indexes: with the BM25 settings
//! (`rankingRules: ["bm25"]`, searchable `title`, `text`; `--settings JSON` overrides them for
//! experiments) and with default settings (keys `*_default_*`).

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::corpus::data_dir;
use crate::metrics::{Judgements, Summary, summarize};
use crate::server::Server;

/// A judged collection.
pub struct Collection {
    name: &'static str,
    primary_key: &'static str,
    /// Documents as NDJSON lines.
    docs: Vec<String>,
    /// `(query id, text)`, only queries with judgements.
    queries: Vec<(String, String)>,
    qrels: HashMap<String, Judgements>,
}

/// Which SciFact queries to evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `qrels-train.tsv`: for tuning.
    Train,
    /// `qrels-test.tsv`: the reported figures.
    Test,
}

fn read_gz_lines(path: &std::path::Path) -> Result<Vec<String>> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            out.push(line);
        }
    }
    Ok(out)
}

/// SciFact with the qrels of one split.
///
/// # Errors
/// Missing or malformed files.
pub fn scifact(split: Split) -> Result<Collection> {
    let dir = data_dir().join("scifact");
    let docs = read_gz_lines(&dir.join("corpus.jsonl.gz"))?;
    let qrels_file = match split {
        Split::Train => "qrels-train.tsv",
        Split::Test => "qrels-test.tsv",
    };
    let mut qrels: HashMap<String, Judgements> = HashMap::new();
    let text = std::fs::read_to_string(dir.join(qrels_file))?;
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let [q, d, g] = cols[..] else {
            bail!("{qrels_file}: bad line {line:?}");
        };
        qrels
            .entry(q.to_string())
            .or_default()
            .insert(d.to_string(), g.trim().parse()?);
    }
    let mut queries = Vec::new();
    for line in std::fs::read_to_string(dir.join("queries.jsonl"))?.lines() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)?;
        let (Some(id), Some(q)) = (v["_id"].as_str(), v["text"].as_str()) else {
            bail!("queries.jsonl: bad line {line:?}");
        };
        if qrels.contains_key(id) {
            queries.push((id.to_string(), q.to_string()));
        }
    }
    Ok(Collection {
        name: "scifact",
        primary_key: "_id",
        docs,
        queries,
        qrels,
    })
}

/// `.I n` blocks of a Cranfield file: `(n, fields by letter)`.
fn cranfield_blocks(text: &str) -> Vec<(String, HashMap<char, String>)> {
    let mut out: Vec<(String, HashMap<char, String>)> = Vec::new();
    let mut field = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix(".I ") {
            out.push((id.trim().to_string(), HashMap::new()));
            field = None;
        } else if line.len() == 2 && line.starts_with('.') {
            field = line.chars().nth(1);
        } else if let (Some(f), Some((_, fields))) = (field, out.last_mut()) {
            let s = fields.entry(f).or_default();
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(line.trim());
        }
    }
    out
}

/// Cranfield.
///
/// # Errors
/// Missing or malformed files.
pub fn cranfield() -> Result<Collection> {
    let dir = data_dir().join("cranfield");
    let mut docs = Vec::new();
    for (id, fields) in cranfield_blocks(&std::fs::read_to_string(dir.join("cran.all.1400"))?) {
        let get = |c| fields.get(&c).cloned().unwrap_or_default();
        docs.push(json!({"id": id, "title": get('T'), "text": get('W')}).to_string());
    }
    // `cranqrel` numbers the queries 1..225 in file order.
    let queries: Vec<(String, String)> =
        cranfield_blocks(&std::fs::read_to_string(dir.join("cran.qry"))?)
            .into_iter()
            .enumerate()
            .map(|(i, (_, f))| {
                (
                    (i + 1).to_string(),
                    f.get(&'W').cloned().unwrap_or_default(),
                )
            })
            .collect();
    let mut qrels: HashMap<String, Judgements> = HashMap::new();
    for line in std::fs::read_to_string(dir.join("cranqrel"))?.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [q, d, g] = cols[..] else {
            continue;
        };
        let grade: i32 = g.parse()?;
        let gain = if (1..=4).contains(&grade) {
            f64::from(5 - grade)
        } else {
            0.0
        };
        qrels
            .entry(q.to_string())
            .or_default()
            .insert(d.to_string(), gain);
    }
    let queries = queries
        .into_iter()
        .filter(|(id, _)| qrels.contains_key(id))
        .collect();
    Ok(Collection {
        name: "cranfield",
        primary_key: "id",
        docs,
        queries,
        qrels,
    })
}

/// The settings the relevance targets are measured with.
pub fn bm25_settings() -> Value {
    json!({
        "rankingRules": ["bm25"],
        "searchableAttributes": ["title", "text"],
    })
}

/// Loads a collection into `index` (after applying `settings`, when given) and evaluates it.
///
/// # Errors
/// HTTP errors.
pub fn evaluate(
    server: &Server,
    c: &Collection,
    index: &str,
    settings: Option<&Value>,
) -> Result<Summary> {
    if let Some(s) = settings {
        server.update_settings(index, s)?;
    }
    let started = std::time::Instant::now();
    server.add_ndjson(index, c.primary_key, &c.docs, 1000)?;
    let load_s = started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let mut runs = Vec::with_capacity(c.queries.len());
    for (id, q) in &c.queries {
        runs.push((id, server.search_ids(index, c.primary_key, q, 100)?));
    }
    let s = summarize(
        runs.iter()
            .filter_map(|(id, ranked)| Some((ranked.as_slice(), c.qrels.get(*id)?))),
    );
    eprintln!(
        "[relevance] {index}: loaded in {load_s:.1} s, {} queries in {:.1} s: nDCG@10 {:.4}, \
         Recall@100 {:.4}, MRR@10 {:.4}",
        s.queries,
        started.elapsed().as_secs_f64(),
        s.ndcg10,
        s.recall100,
        s.mrr10
    );
    Ok(s)
}

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Options of a run.
pub struct Options {
    /// SciFact queries to evaluate.
    pub split: Split,
    /// Settings replacing [`bm25_settings`].
    pub settings: Value,
    /// Whether to evaluate default settings too.
    pub defaults: bool,
    /// Only this collection (`scifact` or `cranfield`).
    pub only: Option<String>,
}

impl Options {
    /// Parses `--split train|test`, `--settings JSON`, `--no-defaults`, `--only NAME`.
    ///
    /// # Errors
    /// Unknown arguments.
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            split: Split::Test,
            settings: bm25_settings(),
            defaults: true,
            only: None,
        };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--split" => {
                    o.split = match it.next().map(String::as_str) {
                        Some("train") => Split::Train,
                        Some("test") => Split::Test,
                        other => bail!("--split train|test, not {other:?}"),
                    }
                }
                "--settings" => {
                    let s = it.next().context("--settings JSON")?;
                    o.settings = serde_json::from_str(s).context("--settings JSON")?;
                }
                "--no-defaults" => o.defaults = false,
                "--only" => o.only = Some(it.next().context("--only scifact|cranfield")?.clone()),
                other => bail!("unknown argument {other}"),
            }
        }
        Ok(o)
    }
}

/// Runs the benchmark and returns its JSON line.
///
/// # Errors
/// Data, server and HTTP errors.
pub fn run(options: &Options) -> Result<Value> {
    let server = Server::start("relevance")?;
    let mut out = serde_json::Map::new();
    out.insert("bench".into(), json!("relevance"));
    if options.split == Split::Train {
        out.insert("scifact_split".into(), json!("train"));
    }
    for name in ["scifact", "cranfield"] {
        if options.only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let c = if name == "scifact" {
            scifact(options.split)?
        } else {
            cranfield()?
        };
        let s = evaluate(&server, &c, c.name, Some(&options.settings))?;
        out.insert(format!("{}_ndcg10", c.name), json!(r4(s.ndcg10)));
        out.insert(format!("{}_recall100", c.name), json!(r4(s.recall100)));
        out.insert(format!("{}_mrr10", c.name), json!(r4(s.mrr10)));
        if options.defaults {
            let d = evaluate(&server, &c, &format!("{}_default", c.name), None)?;
            out.insert(format!("{}_default_ndcg10", c.name), json!(r4(d.ndcg10)));
            out.insert(
                format!("{}_default_recall100", c.name),
                json!(r4(d.recall100)),
            );
            out.insert(format!("{}_default_mrr10", c.name), json!(r4(d.mrr10)));
        }
        out.insert(format!("{}_queries", c.name), json!(s.queries));
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cranfield_blocks_join_lines_by_field() {
        let b = cranfield_blocks(".I 001\n.W\nwhat is\nlift .\n.I 002\n.T\na\n.W\nb\nc\n");
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].0, "001");
        assert_eq!(b[0].1[&'W'], "what is lift .");
        assert_eq!(b[1].1[&'T'], "a");
        assert_eq!(b[1].1[&'W'], "b c");
    }
}
