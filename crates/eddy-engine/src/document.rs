//! Documents as users send them: payload readers (JSON, NDJSON, CSV), document ids and
//! primary-key inference.
//!
//! These functions are pure: the same bytes always give the same documents or the same
//! error. The write path relies on it, because a write-ahead log record holds the payload as
//! received and is parsed again when the log is replayed after a crash.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A JSON document: an object, fields in the order the user wrote them.
pub type Document = Map<String, Value>;

/// Longest document id accepted, in bytes.
pub const MAX_DOCUMENT_ID_BYTES: usize = 511;

/// How a payload is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PayloadFormat {
    /// A JSON object or an array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
    /// Comma-separated values with a header row; `name:number` / `name:boolean` typed columns.
    Csv {
        /// Field delimiter (one ASCII byte).
        delimiter: u8,
    },
}

impl PayloadFormat {
    fn name(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Ndjson => "ndjson",
            PayloadFormat::Csv { .. } => "csv",
        }
    }
}

/// Parses a payload into documents. An empty payload is `MissingPayload`; anything that does
/// not decode, or decodes to something other than objects, is `MalformedPayload`.
pub fn parse_payload(bytes: &[u8], format: PayloadFormat) -> Result<Vec<Document>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::MissingPayload(format.name()));
    }
    match format {
        PayloadFormat::Json => parse_json(bytes),
        PayloadFormat::Ndjson => parse_ndjson(bytes),
        PayloadFormat::Csv { delimiter } => parse_csv(bytes, delimiter),
    }
}

fn malformed(format: &str, detail: impl std::fmt::Display) -> Error {
    Error::MalformedPayload(format!(
        "The `{format}` payload provided is malformed. `{detail}`."
    ))
}

fn parse_json(bytes: &[u8]) -> Result<Vec<Document>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| malformed("json", format!("Couldn't serialize document value: {e}")))?;
    match value {
        Value::Object(map) => Ok(vec![map]),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => Ok(map),
                other => Err(malformed(
                    "json",
                    format!(
                        "Couldn't serialize document value: expected an object, found `{}`",
                        abbreviate(&other)
                    ),
                )),
            })
            .collect(),
        other => Err(malformed(
            "json",
            format!(
                "Couldn't serialize document value: expected an object or an array of objects, found `{}`",
                abbreviate(&other)
            ),
        )),
    }
}

fn parse_ndjson(bytes: &[u8]) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for item in serde_json::Deserializer::from_slice(bytes).into_iter::<Value>() {
        match item {
            Ok(Value::Object(map)) => docs.push(map),
            Ok(other) => {
                return Err(malformed(
                    "ndjson",
                    format!(
                        "expected an object per line, found `{}`",
                        abbreviate(&other)
                    ),
                ));
            }
            Err(e) => return Err(malformed("ndjson", e)),
        }
    }
    Ok(docs)
}

#[derive(Clone, Copy)]
enum CsvType {
    String,
    Number,
    Boolean,
}

fn parse_csv(bytes: &[u8], delimiter: u8) -> Result<Vec<Document>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader.headers().map_err(|e| malformed("csv", e))?.clone();
    let mut columns = Vec::with_capacity(headers.len());
    for header in headers.iter() {
        let (name, ty) = match header.rsplit_once(':') {
            Some((name, "string")) => (name, CsvType::String),
            Some((name, "number")) => (name, CsvType::Number),
            Some((name, "boolean")) => (name, CsvType::Boolean),
            _ => (header, CsvType::String),
        };
        columns.push((name.to_string(), ty));
    }
    let mut docs = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| malformed("csv", e))?;
        let mut doc = Map::with_capacity(columns.len());
        for ((name, ty), cell) in columns.iter().zip(record.iter()) {
            let value = match ty {
                _ if cell.is_empty() => Value::Null,
                CsvType::String => Value::String(cell.to_string()),
                CsvType::Number => parse_csv_number(cell.trim()).ok_or_else(|| {
                    malformed(
                        "csv",
                        format!(
                            "Error parsing number {cell:?} at line {}: invalid float literal",
                            line + 2
                        ),
                    )
                })?,
                CsvType::Boolean => match cell.trim() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(malformed(
                            "csv",
                            format!(
                                "Error parsing boolean {cell:?} at line {}: provided string was not `true` or `false`",
                                line + 2
                            ),
                        ));
                    }
                },
            };
            doc.insert(name.clone(), value);
        }
        docs.push(doc);
    }
    Ok(docs)
}

fn parse_csv_number(cell: &str) -> Option<Value> {
    if let Ok(i) = cell.parse::<i64>() {
        return Some(Value::from(i));
    }
    let f = cell.parse::<f64>().ok()?;
    serde_json::Number::from_f64(f).map(Value::Number)
}

/// A short rendering of a value for error messages.
pub fn abbreviate(value: &Value) -> String {
    let text = value.to_string();
    if text.len() <= 120 {
        return text;
    }
    let mut end = 117;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Checks an index uid: `[A-Za-z0-9_-]`, 1 to 400 bytes.
pub fn validate_index_uid(uid: &str) -> Result<()> {
    let ok = !uid.is_empty()
        && uid.len() <= 400
        && uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidIndexUid(uid.to_string()))
    }
}

/// Checks a document id given as a string (in a URL or in a list of ids to delete).
pub fn validate_id_str(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_DOCUMENT_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidDocumentId(id.to_string()))
    }
}

/// The canonical string of a document id value: integers in decimal, strings as they are.
pub fn id_from_value(value: &Value) -> Result<String> {
    match value {
        Value::String(s) => {
            validate_id_str(s)?;
            Ok(s.clone())
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(Error::InvalidDocumentId(abbreviate(other))),
    }
}

/// Finds the value at a primary-key path (`id` or nested `a.b`). Returns `None` when absent.
pub fn lookup_path<'a>(doc: &'a Document, path: &str) -> Option<&'a Value> {
    if let Some(v) = doc.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    match doc.get(head)? {
        Value::Object(inner) => lookup_path(inner, rest),
        _ => None,
    }
}

/// The canonical id of a document under a primary key.
pub fn document_id(doc: &Document, primary_key: &str) -> Result<String> {
    match lookup_path(doc, primary_key) {
        None | Some(Value::Null) => Err(Error::MissingDocumentId {
            primary_key: primary_key.to_string(),
            document: abbreviate(&Value::Object(doc.clone())),
        }),
        Some(Value::Array(_)) => Err(Error::TooManyDocumentIds {
            primary_key: primary_key.to_string(),
            document: abbreviate(&Value::Object(doc.clone())),
        }),
        Some(value) => id_from_value(value),
    }
}

/// Infers the primary key from a document: the single top-level attribute whose name ends
/// with `id` (case-insensitively).
pub fn infer_primary_key(doc: &Document) -> Result<String> {
    let candidates: Vec<String> = doc
        .keys()
        .filter(|k| k.to_ascii_lowercase().ends_with("id"))
        .cloned()
        .collect();
    match candidates.len() {
        0 => Err(Error::PrimaryKeyNoCandidate),
        1 => Ok(candidates.into_iter().next().unwrap_or_default()),
        _ => Err(Error::PrimaryKeyMultipleCandidates(candidates)),
    }
}

/// Meilisearch's partial update: the top-level fields of `patch` replace those of `base`.
pub fn merge_update(base: &mut Document, patch: Document) {
    for (k, v) in patch {
        base.insert(k, v);
    }
}

/// Keeps only the listed fields (dotted paths reach into objects). `None` keeps everything.
pub fn select_fields(doc: &Document, fields: Option<&[String]>) -> Document {
    let Some(fields) = fields else {
        return doc.clone();
    };
    if fields.iter().any(|f| f == "*") {
        return doc.clone();
    }
    let mut out = Map::new();
    for (k, v) in doc {
        if fields.iter().any(|f| f == k) {
            out.insert(k.clone(), v.clone());
            continue;
        }
        let prefix_match: Vec<&str> = fields
            .iter()
            .filter_map(|f| f.strip_prefix(k.as_str())?.strip_prefix('.'))
            .collect();
        if prefix_match.is_empty() {
            continue;
        }
        if let Value::Object(inner) = v {
            let sub: Vec<String> = prefix_match.iter().map(|s| s.to_string()).collect();
            let selected = select_fields(inner, Some(&sub));
            if !selected.is_empty() {
                out.insert(k.clone(), Value::Object(selected));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Document {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn ids_follow_meilisearch_rules() {
        assert_eq!(id_from_value(&json!(12)).unwrap(), "12");
        assert_eq!(id_from_value(&json!("a-B_9")).unwrap(), "a-B_9");
        assert!(id_from_value(&json!("a b")).is_err());
        assert!(id_from_value(&json!("")).is_err());
        assert!(id_from_value(&json!(1.5)).is_err());
        assert!(id_from_value(&json!(true)).is_err());
        assert!(id_from_value(&json!("é")).is_err());
        assert!(id_from_value(&json!("x".repeat(511))).is_ok());
        assert!(id_from_value(&json!("x".repeat(512))).is_err());
    }

    #[test]
    fn missing_and_invalid_ids_are_typed() {
        let doc = obj(json!({"title": "x"}));
        assert!(matches!(
            document_id(&doc, "id"),
            Err(Error::MissingDocumentId { .. })
        ));
        let doc = obj(json!({"id": "no spaces allowed"}));
        assert!(matches!(
            document_id(&doc, "id"),
            Err(Error::InvalidDocumentId(_))
        ));
        let doc = obj(json!({"a": {"b": 7}}));
        assert_eq!(document_id(&doc, "a.b").unwrap(), "7");
    }

    #[test]
    fn primary_key_inference() {
        assert_eq!(
            infer_primary_key(&obj(json!({"movie_id": 1, "title": "x"}))).unwrap(),
            "movie_id"
        );
        assert!(matches!(
            infer_primary_key(&obj(json!({"title": "x"}))),
            Err(Error::PrimaryKeyNoCandidate)
        ));
        assert!(matches!(
            infer_primary_key(&obj(json!({"id": 1, "uid": 2}))),
            Err(Error::PrimaryKeyMultipleCandidates(c)) if c.len() == 2
        ));
        assert_eq!(infer_primary_key(&obj(json!({"ID": 3}))).unwrap(), "ID");
    }

    #[test]
    fn payload_readers() {
        let docs = parse_payload(br#"[{"id":1},{"id":2}]"#, PayloadFormat::Json).unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_payload(br#"{"id":1}"#, PayloadFormat::Json).unwrap();
        assert_eq!(docs.len(), 1);
        let docs = parse_payload(b"{\"id\":1}\n\n{\"id\":2}\n", PayloadFormat::Ndjson).unwrap();
        assert_eq!(docs.len(), 2);
        let docs = parse_payload(
            b"id:number,title,ok:boolean,price:number\n1,hello,true,2.5\n2,,false,\n",
            PayloadFormat::Csv { delimiter: b',' },
        )
        .unwrap();
        assert_eq!(
            Value::Object(docs[0].clone()),
            json!({"id":1,"title":"hello","ok":true,"price":2.5})
        );
        assert_eq!(
            Value::Object(docs[1].clone()),
            json!({"id":2,"title":null,"ok":false,"price":null})
        );
        let docs = parse_payload(b"id;t\n1;a\n", PayloadFormat::Csv { delimiter: b';' }).unwrap();
        assert_eq!(docs[0]["t"], json!("a"));
    }

    #[test]
    fn bad_payloads_are_errors() {
        for (bytes, format) in [
            (&b"[{"[..], PayloadFormat::Json),
            (&b"[1,2]"[..], PayloadFormat::Json),
            (&b"\"x\""[..], PayloadFormat::Json),
            (&b"{\"a\":1}\n[1]"[..], PayloadFormat::Ndjson),
            (&b"{\"a\":1}\n{"[..], PayloadFormat::Ndjson),
            (
                &b"id:number\nabc\n"[..],
                PayloadFormat::Csv { delimiter: b',' },
            ),
            (&b"a,b\n1,2,3\n"[..], PayloadFormat::Csv { delimiter: b',' }),
        ] {
            assert!(
                matches!(
                    parse_payload(bytes, format),
                    Err(Error::MalformedPayload(_))
                ),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert!(matches!(
            parse_payload(b"  \n", PayloadFormat::Json),
            Err(Error::MissingPayload("json"))
        ));
    }

    #[test]
    fn select_fields_reaches_nested() {
        let doc = obj(json!({"id": 1, "a": {"b": 2, "c": 3}, "d": 4}));
        let fields = vec!["id".to_string(), "a.b".to_string()];
        assert_eq!(
            Value::Object(select_fields(&doc, Some(&fields))),
            json!({"id": 1, "a": {"b": 2}})
        );
    }
}
