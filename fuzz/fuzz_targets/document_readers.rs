//! The document readers (JSON, NDJSON, CSV with any delimiter): the first byte picks the
//! format, the rest is the payload. Any payload gives documents or an error, never a panic;
//! every document read has an id that validates, or is refused when looked up.

#![no_main]

use eddy_engine::PayloadFormat;
use eddy_engine::document::{infer_primary_key, parse_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let format = match selector % 4 {
        0 => PayloadFormat::Json,
        1 => PayloadFormat::Ndjson,
        2 => PayloadFormat::Csv { delimiter: b',' },
        _ => PayloadFormat::Csv {
            delimiter: selector / 4 % 128,
        },
    };
    if let Ok(docs) = parse_payload(payload, format) {
        if let Some(first) = docs.first()
            && let Ok(pk) = infer_primary_key(first)
        {
            for doc in &docs {
                let _ = eddy_engine::document::document_id(doc, &pk);
            }
        }
    }
});
