//! The filter parser: any string, and any JSON value as the array form, parses or fails
//! with an error, never panics and never overflows the stack.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = eddy_filter::parse(text);
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = eddy_filter::parse_json(&json);
    }
});
