//! Operations as they are written to the log.
//!
//! One operation is one log record, so a batch of documents is atomic after a crash. The
//! payload of a document operation is kept exactly as received (JSON, NDJSON or CSV bytes):
//! nothing is re-serialized on the write path, and replay parses it with the same reader.
//!
//! Record layout (payload of a log record of kind [`RECORD_KIND_OP`]):
//!
//! | bytes | content |
//! |---|---|
//! | 1 | encoding version (1) |
//! | 4 | header length `h`, u32 little-endian |
//! | h | header, JSON ([`OpHeader`]) |
//! | rest | body (document payload, or empty) |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::document::PayloadFormat;
use crate::error::{Error, Result};

/// Log record kind of an operation.
pub const RECORD_KIND_OP: u8 = 1;
const ENCODING_VERSION: u8 = 1;

/// Add-or-replace or add-or-update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Method {
    /// Replace whole documents.
    Replace,
    /// Merge top-level fields into existing documents.
    Update,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Op {
    /// Add documents (the body is the payload).
    #[serde(rename_all = "camelCase")]
    Documents {
        /// Replace or update.
        method: Method,
        /// Payload encoding.
        format: PayloadFormat,
        /// `primaryKey` given with the request.
        primary_key: Option<String>,
    },
    /// Delete documents by id.
    #[serde(rename_all = "camelCase")]
    DeleteDocuments {
        /// Ids as given.
        ids: Vec<Value>,
    },
    /// Delete documents matching a filter.
    #[serde(rename_all = "camelCase")]
    DeleteByFilter {
        /// The filter as given.
        filter: Value,
    },
    /// Delete every document.
    ClearDocuments,
    /// Create an index.
    #[serde(rename_all = "camelCase")]
    CreateIndex {
        /// Primary key, if given.
        primary_key: Option<String>,
    },
    /// Change an index's primary key.
    #[serde(rename_all = "camelCase")]
    UpdateIndex {
        /// New primary key.
        primary_key: Option<String>,
    },
    /// Delete an index.
    DeleteIndex,
    /// Change settings.
    #[serde(rename_all = "camelCase")]
    UpdateSettings {
        /// The settings patch as given.
        patch: Map<String, Value>,
    },
    /// Cancel tasks matching a query.
    #[serde(rename_all = "camelCase")]
    CancelTasks {
        /// The task filter.
        query: Value,
        /// The raw query string.
        original_filter: String,
    },
    /// Delete tasks matching a query.
    #[serde(rename_all = "camelCase")]
    DeleteTasks {
        /// The task filter.
        query: Value,
        /// The raw query string.
        original_filter: String,
    },
}

/// Header of a logged operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpHeader {
    /// When the request arrived (Unix nanoseconds).
    pub enqueued_at_ns: i128,
    /// Target index, if any.
    pub index: Option<String>,
    /// The operation.
    pub op: Op,
}

/// Encodes an operation into a log payload.
pub fn encode(header: &OpHeader, body: &[u8]) -> Result<Vec<u8>> {
    let h = serde_json::to_vec(header).map_err(Error::meta)?;
    let len = u32::try_from(h.len())
        .map_err(|_| Error::MalformedPayload("operation header too large".into()))?;
    let mut out = Vec::with_capacity(1 + 4 + h.len() + body.len());
    out.push(ENCODING_VERSION);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

/// Decodes a log payload into the header and the body.
pub fn decode(payload: &[u8]) -> Result<(OpHeader, &[u8])> {
    let corrupt = |why: &str| Error::Corrupt(format!("log record does not decode: {why}"));
    let (&version, rest) = payload.split_first().ok_or_else(|| corrupt("empty"))?;
    if version != ENCODING_VERSION {
        return Err(corrupt(&format!("unknown encoding version {version}")));
    }
    if rest.len() < 4 {
        return Err(corrupt("truncated header length"));
    }
    let (len, rest) = rest.split_at(4);
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if rest.len() < len {
        return Err(corrupt("truncated header"));
    }
    let (h, body) = rest.split_at(len);
    let header = serde_json::from_slice(h).map_err(|e| corrupt(&e.to_string()))?;
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let header = OpHeader {
            enqueued_at_ns: 1_700_000_000_123_456_789,
            index: Some("movies".into()),
            op: Op::Documents {
                method: Method::Update,
                format: PayloadFormat::Csv { delimiter: b';' },
                primary_key: Some("id".into()),
            },
        };
        let bytes = encode(&header, b"id;title\n1;x\n").unwrap();
        let (back, body) = decode(&bytes).unwrap();
        assert_eq!(back, header);
        assert_eq!(body, b"id;title\n1;x\n");
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for bytes in [
            &b""[..],
            &[1],
            &[1, 255, 255, 255, 255],
            &[9, 0, 0, 0, 0],
            &[1, 2, 0, 0, 0, b'{', b'x'],
        ] {
            assert!(matches!(decode(bytes), Err(Error::Corrupt(_))));
        }
    }
}
