//! Request bodies: the size limit, `Content-Encoding`, `Content-Type` and JSON bodies.
//!
//! The payload limit is counted after decompression. Compressed bodies are inflated by a
//! streaming decoder that stops one byte past the limit, so a decompression bomb costs at
//! most `limit + 1` bytes of memory before it is refused with `payload_too_large`.

use std::io::Read;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, header};
use eddy_engine::{Code, PayloadFormat};
use http_body_util::BodyExt;
use serde_json::Value;

use crate::config::human_bytes;
use crate::error::ApiError;

/// `Content-Encoding` values eddy inflates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No encoding.
    Identity,
    /// gzip.
    Gzip,
    /// zlib (HTTP's `deflate`), or raw deflate as some clients send it.
    Deflate,
    /// Brotli.
    Brotli,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        Code::PayloadTooLarge,
        format!(
            "The provided payload reached the size limit. The maximum accepted payload size is {}.",
            human_bytes(limit as u64)
        ),
    )
}

/// The encoding named by the request's `Content-Encoding`.
///
/// # Errors
/// `invalid_content_type` (415) for encodings eddy does not inflate.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("").trim().to_ascii_lowercase();
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        "br" => Ok(Encoding::Brotli),
        other => Err(ApiError::new(
            Code::InvalidContentType,
            format!(
                "The Content-Encoding `{other}` is not supported. Supported encodings are `gzip`, `deflate`, `br` and `identity`."
            ),
        )),
    }
}

/// How much of a refused body is still read (and thrown away) so that the client, which is
/// usually still sending, gets to read the `413` instead of a broken pipe. Past this the
/// connection is simply closed.
pub const DRAIN_MAX_BYTES: usize = 64 << 20;

/// Reads a whole body, enforcing `limit` on the bytes after decompression.
///
/// # Errors
/// `payload_too_large` (413) past the limit, `malformed_payload` for a body that does not
/// decompress, `invalid_content_type` for an unknown encoding.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let encoding = encoding(headers)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A compressed body is never larger than the limit either (it would inflate beyond it
    // except in pathological cases), so the same bound caps what is buffered.
    let mut body = body;
    if declared.is_some_and(|n| n > limit as u64) {
        drain(&mut body).await;
        return Err(too_large(limit));
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(0));
    let mut raw = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                Code::MalformedPayload,
                format!("The request body could not be read: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if raw.len() + data.len() > limit {
                drain(&mut body).await;
                return Err(too_large(limit));
            }
            raw.extend_from_slice(&data);
        }
    }
    if encoding == Encoding::Identity {
        return Ok(raw);
    }
    match tokio::task::spawn_blocking(move || inflate(&raw, encoding, limit)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::internal("decompression did not complete")),
    }
}

/// A request body shared between the handler and [`drain_unread`], which reads what the
/// handler left.
struct SharedBody(Arc<Mutex<Body>>);

impl SharedBody {
    fn lock(&self) -> std::sync::MutexGuard<'_, Body> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl http_body::Body for SharedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut *self.lock()).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.lock().is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.lock().size_hint()
    }
}

/// Middleware: after the handler answered, reads and discards (up to [`DRAIN_MAX_BYTES`])
/// whatever of the request body it did not read — an error answered before the body was
/// read (a refused key, an invalid index uid…). Otherwise the connection could not be
/// reused, and a client sending its next request on it would see it closed under it.
pub async fn drain_unread(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = request.into_parts();
    let shared = Arc::new(Mutex::new(body));
    let request = axum::extract::Request::from_parts(parts, Body::new(SharedBody(shared.clone())));
    let response = next.run(request).await;
    let mut rest = std::mem::take(&mut *SharedBody(shared).lock());
    if !http_body::Body::is_end_stream(&rest) {
        drain(&mut rest).await;
    }
    response
}

/// Reads and discards up to [`DRAIN_MAX_BYTES`] of what is left of a refused body.
async fn drain(body: &mut Body) {
    let mut drained = 0usize;
    while drained < DRAIN_MAX_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    drained += data.len();
                }
            }
            _ => return,
        }
    }
}

/// Inflates `raw`, reading at most `limit + 1` bytes of output.
///
/// # Errors
/// `payload_too_large` past the limit, `malformed_payload` for a corrupt stream.
pub fn inflate(raw: &[u8], encoding: Encoding, limit: usize) -> Result<Vec<u8>, ApiError> {
    let cap = limit as u64 + 1;
    let mut out = Vec::new();
    let result = match encoding {
        Encoding::Identity => {
            out.extend_from_slice(raw);
            Ok(0)
        }
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(raw)
            .take(cap)
            .read_to_end(&mut out),
        Encoding::Deflate => {
            // RFC 9110's `deflate` is zlib-wrapped; some clients send a raw deflate stream.
            let zlib_header = raw.len() >= 2
                && raw[0] & 0x0f == 8
                && (u16::from(raw[0]) << 8 | u16::from(raw[1])) % 31 == 0;
            if zlib_header {
                flate2::read::ZlibDecoder::new(raw)
                    .take(cap)
                    .read_to_end(&mut out)
            } else {
                flate2::read::DeflateDecoder::new(raw)
                    .take(cap)
                    .read_to_end(&mut out)
            }
        }
        Encoding::Brotli => brotli::Decompressor::new(raw, 64 * 1024)
            .take(cap)
            .read_to_end(&mut out),
    };
    if let Err(e) = result {
        return Err(ApiError::new(
            Code::MalformedPayload,
            format!("The request body could not be decompressed: {e}."),
        ));
    }
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out)
}

/// The media type of the request, without parameters, lowercased.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = value.to_str().unwrap_or("");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(essence)
}

const DOCUMENT_TYPES: &str = "`application/json`, `application/x-ndjson`, `text/csv`";

/// The payload format of a documents request, from its `Content-Type` and `csvDelimiter`.
///
/// # Errors
/// `missing_content_type` / `invalid_content_type` (415), `invalid_document_csv_delimiter`.
pub fn document_format(
    headers: &HeaderMap,
    csv_delimiter: Option<&str>,
) -> Result<PayloadFormat, ApiError> {
    let Some(media) = media_type(headers) else {
        return Err(ApiError::new(
            Code::MissingContentType,
            format!(
                "A Content-Type header is missing. Accepted values for the Content-Type header are: {DOCUMENT_TYPES}"
            ),
        ));
    };
    let format = match media.as_str() {
        "application/json" => PayloadFormat::Json,
        "application/x-ndjson" => PayloadFormat::Ndjson,
        "text/csv" => PayloadFormat::Csv { delimiter: b',' },
        _ => {
            return Err(ApiError::new(
                Code::InvalidContentType,
                format!(
                    "The Content-Type `{media}` is invalid. Accepted values for the Content-Type header are: {DOCUMENT_TYPES}"
                ),
            ));
        }
    };
    match (format, csv_delimiter) {
        (_, None) => Ok(format),
        (PayloadFormat::Csv { .. }, Some(d)) => match d.as_bytes() {
            [b] if b.is_ascii() => Ok(PayloadFormat::Csv { delimiter: *b }),
            _ => Err(ApiError::new(
                Code::InvalidDocumentCsvDelimiter,
                format!(
                    "Invalid value in parameter `csvDelimiter`: expected a string of one character, but found the following string of {} characters: `{d}`",
                    d.chars().count()
                ),
            )),
        },
        (_, Some(_)) => Err(ApiError::new(
            Code::InvalidContentType,
            format!(
                "The Content-Type `{media}` does not support the use of a csv delimiter. The csv delimiter can only be used with the Content-Type `text/csv`."
            ),
        )),
    }
}

/// Parses a JSON body of a non-document route (which must say `application/json`).
///
/// # Errors
/// `missing_content_type` / `invalid_content_type` (415), `missing_payload` for an empty
/// body, `malformed_payload` for invalid JSON.
pub fn json(headers: &HeaderMap, bytes: &[u8]) -> Result<Value, ApiError> {
    match media_type(headers).as_deref() {
        Some("application/json") => {}
        None => {
            return Err(ApiError::new(
                Code::MissingContentType,
                "A Content-Type header is missing. Accepted values for the Content-Type header are: `application/json`",
            ));
        }
        Some(other) => {
            return Err(ApiError::new(
                Code::InvalidContentType,
                format!(
                    "The Content-Type `{other}` is invalid. Accepted values for the Content-Type header are: `application/json`"
                ),
            ));
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            Code::MissingPayload,
            "A json payload is missing.",
        ));
    }
    parse_json_bytes(bytes)
}

/// Parses JSON bytes. Nesting deeper than [`MAX_JSON_DEPTH`] is refused by the parser itself
/// (serde_json's recursion limit), before any deep structure is built.
///
/// # Errors
/// `malformed_payload`.
pub fn parse_json_bytes(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            Code::MalformedPayload,
            format!("The json payload provided is malformed. `{e}`."),
        )
    })
}

/// Deepest JSON nesting accepted (serde_json's built-in recursion limit, which eddy keeps).
pub const MAX_JSON_DEPTH: usize = 128;

/// Reads and parses a JSON body.
///
/// # Errors
/// As [`read`] and [`json`].
pub async fn read_json(headers: &HeaderMap, body: Body, limit: usize) -> Result<Value, ApiError> {
    let bytes = read(headers, body, limit).await?;
    json(headers, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_every_encoding() {
        let data = br#"[{"id":1,"title":"hello"}]"#.repeat(10);
        assert_eq!(
            inflate(&gzip(&data), Encoding::Gzip, 1 << 20).unwrap(),
            data
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        assert_eq!(
            inflate(&z.finish().unwrap(), Encoding::Deflate, 1 << 20).unwrap(),
            data
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&data).unwrap();
        assert_eq!(
            inflate(&d.finish().unwrap(), Encoding::Deflate, 1 << 20).unwrap(),
            data
        );
        let mut b = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut b, 4096, 5, 22);
            w.write_all(&data).unwrap();
        }
        assert_eq!(inflate(&b, Encoding::Brotli, 1 << 20).unwrap(), data);
    }

    #[test]
    fn a_bomb_is_cut_at_the_limit() {
        let bomb = gzip(&vec![b'a'; 50 << 20]);
        assert!(bomb.len() < 1 << 20);
        let err = inflate(&bomb, Encoding::Gzip, 1 << 20).unwrap_err();
        assert_eq!(err.body().code, "payload_too_large");
        assert!(inflate(b"not gzip", Encoding::Gzip, 1 << 20).is_err());
    }

    #[test]
    fn document_content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(
            document_format(&h, None).unwrap_err().body().code,
            "missing_content_type"
        );
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert_eq!(
            document_format(&h, None).unwrap_err().status().as_u16(),
            415
        );
        h.insert(
            header::CONTENT_TYPE,
            "text/csv; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(
            document_format(&h, Some(";")).unwrap(),
            PayloadFormat::Csv { delimiter: b';' }
        );
        assert_eq!(
            document_format(&h, Some(";;")).unwrap_err().body().code,
            "invalid_document_csv_delimiter"
        );
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert!(document_format(&h, Some(";")).is_err());
        assert_eq!(document_format(&h, None).unwrap(), PayloadFormat::Json);
    }
}
